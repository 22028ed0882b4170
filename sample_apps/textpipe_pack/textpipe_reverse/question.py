"""A plain Python pluggy plugin shipped in the same pack: it turns text into a question."""

from __future__ import annotations

from hookspecs.textpipe import hookimpl


@hookimpl
def transform(text: str) -> str:
    return text.rstrip(".!?") + "?"
