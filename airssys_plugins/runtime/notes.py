"""Notes kept beside the compile cache (a component's types, its export plan), written and
read with :mod:`marshal`.

``marshal`` is the interpreter's own serializer, already loaded in every process to read
bytecode. :mod:`pickle` and :mod:`json` would cost a new process about 3 and 1.5 ms to
import, on the path of its first load. marshal stores only builtin values, so records go
through :func:`dump` and :func:`load`:

* a record of one of the ``classes`` given is written once, as its class and its fields'
  values, into a table; wherever it appears it is written as its number in that table
  (so a note holds no other numbers). A record named twice comes back as one object, and
  a cycle comes back as it was (a resource's methods may take or return the resource);
* reading makes every record of the table first, then fills in their fields;
* only the classes given may be named, with exactly their own fields. Anything else, and
  any damage, raises ``ValueError``, and the caller reads the types again.

The compile cache holds native code the process runs, so its notes are as trusted as the
cache itself: marshal's data are not meant to resist a forger, and need not here.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["FORMAT", "dump", "load"]

#: marshal's format version written (readable by every Python since 3.4).
_VERSION: Final = 4
#: The first value of every note: a note of another layout is not read.
FORMAT: Final = "airssys-note-1"
#: What reading a damaged note may raise (marshal nests 2,000 deep, past Python's
#: recursion limit).
_DAMAGE: Final = (ValueError, EOFError, TypeError, IndexError, KeyError, AttributeError,
                  RecursionError)  # fmt: skip
#: What a note's records may hold besides other records (a number names a record).
_LEAVES: Final = (str, bytes, bool, type(None))


def dump(value: Any, classes: Mapping[str, type]) -> bytes:
    """``value`` (strings, bytes, booleans, None, tuples, lists, dicts and records of
    ``classes``; no numbers) as bytes."""
    kinds: dict[type, int] = {}  # class -> its number in the header
    header: list[tuple[str, tuple[str, ...]]] = []  # each class: its name and fields
    table: list[tuple[int, tuple[Any, ...]]] = []  # each record: its class, its values
    numbers: dict[int, int] = {}  # id(record) -> its number in the table
    kept: list[Any] = []  # the records numbered, alive while ids are compared

    def enc(v: Any) -> Any:
        t = type(v)
        if t in _LEAVES:
            return v
        if t is tuple:
            return tuple([enc(x) for x in v])
        if t is list:
            return [enc(x) for x in v]
        if t is dict:
            return {enc(k): enc(x) for k, x in v.items()}
        if classes.get(t.__name__) is not t:
            raise ValueError(f"a note may not hold a {t.__module__}.{t.__qualname__}")
        number = numbers.get(id(v))
        if number is not None:
            return number
        kind = kinds.get(t)
        if kind is None:
            kind = kinds[t] = len(header)
            names = tuple(f.name for f in getattr(t, "__record_fields__", ()))
            header.append((t.__name__, names))
        number = numbers[id(v)] = len(table)
        kept.append(v)
        table.append((kind, ()))  # its place, before its fields name it
        names = header[kind][1]
        try:
            table[number] = (kind, tuple([enc(getattr(v, n)) for n in names]))
        except AttributeError as exc:
            raise ValueError(f"a {t.__name__} with a field unset: {exc}") from None
        return number

    root = enc(value)
    return marshal.dumps((FORMAT, tuple(header), tuple(table), root), _VERSION)


def load(blob: bytes, classes: Mapping[str, type]) -> Any:
    """The value :func:`dump` wrote; ``ValueError`` for anything else."""
    try:
        form, header, table, root = marshal.loads(blob)
        if form != FORMAT:
            raise ValueError(f"a note of another format ({form!r})")
        kinds = []
        for name, names in header:
            cls = classes.get(name)
            if cls is None:
                raise ValueError(f"a note may not name {name!r}")
            own = tuple(f.name for f in getattr(cls, "__record_fields__", ()))
            if tuple(names) != own:
                raise ValueError(f"{name} has the fields {own}, not {tuple(names)}")
            kinds.append((cls, own))
        new = object.__new__
        made = [new(kinds[kind][0]) for kind, _ in table]

        def dec(v: Any) -> Any:
            t = type(v)
            if t is int:
                return made[v]
            if t is tuple:
                return tuple([dec(x) for x in v])
            if t in _LEAVES:
                return v
            if t is list:
                return [dec(x) for x in v]
            if t is dict:
                return {dec(k): dec(x) for k, x in v.items()}
            raise ValueError(f"a note may not hold a {t.__name__}")

        setattr_ = object.__setattr__
        for obj, (kind, values) in zip(made, table, strict=True):
            for field, value in zip(kinds[kind][1], values, strict=True):
                setattr_(obj, field, dec(value))
        return dec(root)
    except _DAMAGE as exc:
        raise ValueError(f"not a note of these classes: {exc}") from None
