"""Notes kept beside the compile cache (a component's types, its export plan), written and
read with :mod:`marshal`.

``marshal`` is the interpreter's own serializer, already loaded in every process to read
bytecode. :mod:`pickle` and :mod:`json` would cost a new process about 3 and 1.5 ms to
import, on the path of its first load. marshal stores only builtin values, so records go
through :func:`dump` and :func:`load`:

* a record of one of the ``classes`` given is written once, as its class name and its
  fields' values, into a table; wherever it appears it is written as its number in that
  table. So a record named twice comes back as one object, and a cycle comes back as it
  was (a resource's methods may take or return the resource itself);
* reading makes every record of the table first, then fills in their fields;
* only the classes given may be named, with only their own fields. Anything else, and any
  damage, raises ``ValueError``, and the caller reads the types again.

The compile cache holds native code the process runs, so its notes are as trusted as the
cache itself: marshal's data are not meant to resist a forger, and need not here.
"""

from __future__ import annotations

import marshal
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["dump", "load"]

#: The first item of a tuple that stands for a record (then its number in the table).
_REF: Final = "\0record"
#: marshal's format version written (readable by every Python since 3.4).
_VERSION: Final = 4


def dump(value: Any, classes: Mapping[str, type]) -> bytes:
    """``value`` (builtin values, tuples, lists, dicts and records of ``classes``) as bytes."""
    table: list[tuple[str, tuple[tuple[str, Any], ...]]] = []
    numbers: dict[int, int] = {}  # id(record) -> its number in the table
    kept: list[Any] = []  # the records numbered, alive while ids are compared

    def enc(v: Any) -> Any:
        if v is None or isinstance(v, (str, bytes, int, float)):
            return v
        if isinstance(v, tuple):
            if v and v[0] == _REF:
                raise ValueError("a noted tuple may not start like a record")
            return tuple(enc(x) for x in v)
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            return {enc(k): enc(x) for k, x in v.items()}
        cls = type(v)
        if classes.get(cls.__name__) is not cls:
            raise ValueError(f"a note may not hold a {cls.__module__}.{cls.__qualname__}")
        number = numbers.get(id(v))
        if number is None:
            number = numbers[id(v)] = len(table)
            kept.append(v)
            table.append((cls.__name__, ()))  # its place, before its fields name it
            names = [f.name for f in getattr(cls, "__record_fields__", ())]
            fields = tuple((n, enc(getattr(v, n))) for n in names if hasattr(v, n))
            table[number] = (cls.__name__, fields)
        return (_REF, number)

    root = enc(value)
    return marshal.dumps((tuple(table), root), _VERSION)


def load(blob: bytes, classes: Mapping[str, type]) -> Any:
    """The value :func:`dump` wrote; ``ValueError`` for anything else."""
    try:
        table, root = marshal.loads(blob)
        made: list[Any] = []
        for name, _ in table:
            cls = classes.get(name)
            if cls is None:
                raise ValueError(f"a note may not name {name!r}")
            made.append(object.__new__(cls))

        def dec(v: Any) -> Any:
            if isinstance(v, tuple):
                if v and v[0] == _REF:
                    return made[v[1]]
                return tuple(dec(x) for x in v)
            if isinstance(v, list):
                return [dec(x) for x in v]
            if isinstance(v, dict):
                return {dec(k): dec(x) for k, x in v.items()}
            return v

        for obj, (_, fields) in zip(made, table, strict=True):
            own = {f.name for f in getattr(type(obj), "__record_fields__", ())}
            for field, value in fields:
                if field not in own:
                    raise ValueError(f"{type(obj).__name__} has no field {field!r}")
                object.__setattr__(obj, field, dec(value))
        return dec(root)
    except (ValueError, EOFError, TypeError, IndexError, KeyError, AttributeError) as exc:
        raise ValueError(f"not a note of these classes: {exc}") from None
