"""The notes kept beside the compile cache (:mod:`airssys_plugins.runtime.notes`): the WIT
model's records written with marshal and read back as they were, shared records and
cycles included; nothing but the classes given, with their own fields, is ever made."""

from __future__ import annotations

import marshal

import pytest

from airssys_plugins.contract import wit
from airssys_plugins.runtime import image, notes

CLASSES = image._NOTE_CLASSES


def _counter() -> tuple[wit.ResourceT, wit.FuncSig]:
    """A resource whose static function returns the resource itself: a cycle."""
    res = wit.ResourceT("counter")
    own = wit.HandleT(res, True)
    make = wit.FuncSig((("start", wit.Prim("u32")),), own)
    get = wit.FuncSig((("self", wit.HandleT(res, False)),), wit.Prim("u32"))
    res.complete(make, (("get", get),), (("make", make),))
    return res, make


def test_a_note_gives_back_records_shared_and_cyclic_as_they_were() -> None:
    _, make = _counter()
    record = wit.RecordT("point", (("x", wit.Prim("s32")), ("y", wit.Prim("s32"))))
    value = (
        {("pkg:a/i", "make"): make, (None, "pt"): wit.FuncSig((("p", record),), record)},
        ("pkg:a/i", "wasi:cli/environment@0.2.0"),
        [wit.ListT(wit.Prim("u8"), py_bytes=True), wit.OptionT(record, some=True)],
    )
    back = notes.load(notes.dump(value, CLASSES), CLASSES)
    assert back == value
    exports = back[0]
    made = exports[("pkg:a/i", "make")]
    # the resource came back once, its static function returning that very resource
    assert made.result.resource is made.result.resource.statics[0][1].result.resource
    assert made.result.resource.methods[0][1].params[0][1].resource is made.result.resource
    # fields that take no part in equality come back too
    assert back[2][0].py_bytes is True
    assert back[2][1].some is True
    point = exports[(None, "pt")]
    assert point.params[0][1] is point.result  # one record named twice is one object
    assert point.param_types == (record,)  # a field made at construction is kept


def test_a_note_names_only_the_classes_given() -> None:
    with pytest.raises(ValueError, match="may not hold"):
        notes.dump((print,), CLASSES)
    with pytest.raises(ValueError, match="may not hold"):
        notes.dump(wit.PackageId("a", "b"), CLASSES)  # of the model, but not a type
    with pytest.raises(ValueError, match=r"may not hold a builtins\.int"):
        notes.dump((1, "a"), CLASSES)  # numbers name records
    blob = notes.dump(wit.Prim("u8"), CLASSES)
    with pytest.raises(ValueError, match="may not name 'Prim'"):
        notes.load(blob, {})


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"not a note",
        marshal.dumps((notes.FORMAT, (("Prim", ("__class__",)),), ((0, ("x",)),), 0), 4),
        marshal.dumps((notes.FORMAT, (("Prim", ("name",)),), ((0, ("u8",)),), 3), 4),
        marshal.dumps((notes.FORMAT, (("Prim", ("name",)),), ((0, ("u8", "u16")),), 0), 4),
        marshal.dumps((notes.FORMAT, (("Prim", ("name",)),), ((0, (1.5,)),), 0), 4),
        marshal.dumps(("just", "a", "tuple"), 4),
        marshal.dumps(("airssys-note-0", (), (), None), 4),
        marshal.dumps((notes.FORMAT, (("Prim",),), (), None), 4),
    ],
    ids=["empty", "text", "foreign-field", "dangling-reference", "extra-value", "a-float",
         "not-a-table", "another-format", "short-header"],
)  # fmt: skip
def test_a_damaged_note_is_a_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError, match="not a note of these classes"):
        notes.load(blob, CLASSES)


def test_a_note_nested_past_the_recursion_limit_is_a_value_error() -> None:
    """marshal reads containers nested up to 2,000 deep, past Python's recursion limit:
    such a note is refused like any other damage, not with a RecursionError."""
    deep: object = "leaf"
    for _ in range(1900):
        deep = (deep,)
    blob = marshal.dumps((notes.FORMAT, (), (), deep), 4)
    with pytest.raises(ValueError, match="not a note of these classes"):
        notes.load(blob, CLASSES)
