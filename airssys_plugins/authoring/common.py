"""What every language's skeleton shares: the error, names, comments, zero values."""

from __future__ import annotations

from .._errors import PluginError
from ..contract import wit as _wit
from ..contract.mapping import HookContract

__all__ = [
    "ScaffoldError",
    "camel",
    "hook_comment",
    "pascal",
    "points_to_memory",
    "snake",
    "zero_description",
]


class ScaffoldError(PluginError, ValueError):
    """A plugin project cannot be created (bad name, existing files, a type the chosen
    language's skeleton generator does not support...)."""


def snake(name: str) -> str:
    """``detect-language`` -> ``detect_language``."""
    return name.replace("-", "_")


def camel(name: str) -> str:
    """``detect-language`` -> ``detectLanguage`` (jco's names for interfaces and fields)."""
    first, *rest = name.replace("_", "-").split("-")
    return first + "".join(w[:1].upper() + w[1:] for w in rest)


def pascal(name: str) -> str:
    """``detect-language`` -> ``DetectLanguage`` (componentize-py's class names)."""
    return "".join(w[:1].upper() + w[1:] for w in name.replace("_", "-").split("-"))


def hook_comment(hook: HookContract, prefix: str, *, extra: str = "") -> str:
    """The comment above a hook's stub: what the hookspec says, then the hook's WIT."""
    notes = []
    if hook.firstresult:
        notes.append("firstresult: the first non-none answer wins, none passes")
    if hook.historic:
        notes.append("historic: also replayed to plugins loaded later")
    lines = [*hook.doc.splitlines(), ""] if hook.doc else []
    lines.append(f"Hook `{hook.name}`" + (f" ({'; '.join(notes)})" if notes else "") + ".")
    lines.append(f"WIT: {_wit.render_ident(hook.binding.function)}: {hook.signature.render()}")
    if extra:
        lines.append(extra)
    return "".join(f"{prefix}{line}".rstrip() + "\n" for line in lines)


def points_to_memory(t: _wit.WitType | None) -> bool:
    """Whether a value of ``t`` holds strings or lists (memory the guest must provide)."""
    if t is None or isinstance(t, _wit.EnumT | _wit.FlagsT | _wit.Unsupported):
        return False
    if isinstance(t, _wit.Prim):
        return t.name == "string"
    if isinstance(t, _wit.ListT):
        return True
    if isinstance(t, _wit.OptionT):
        return points_to_memory(t.inner)
    if isinstance(t, _wit.ResultT):
        return points_to_memory(t.ok) or points_to_memory(t.err)
    if isinstance(t, _wit.TupleT):
        return any(points_to_memory(e) for e in t.elements)
    if isinstance(t, _wit.RecordT):
        return any(points_to_memory(ft) for _, ft in t.fields)
    return any(points_to_memory(c) for _, c in t.cases)


def zero_description(t: _wit.WitType) -> str:
    """What the zero value of ``t`` means, for the comment next to a stub's return."""
    if isinstance(t, _wit.Prim):
        return {"string": "an empty string", "bool": "false", "char": "U+0000"}.get(t.name, "zero")
    if isinstance(t, _wit.ListT):
        return "an empty list"
    if isinstance(t, _wit.OptionT):
        return "none"
    if isinstance(t, _wit.ResultT):
        return "ok" if t.ok is None else f"ok({zero_description(t.ok)})"
    if isinstance(t, _wit.VariantT):
        case, payload = t.cases[0]
        return case if payload is None else f"{case}({zero_description(payload)})"
    if isinstance(t, _wit.EnumT):
        return t.names[0]
    if isinstance(t, _wit.FlagsT):
        return "no flags set"
    return "every field zero"
