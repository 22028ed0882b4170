"""A plain Python plugin: it sits in the same PluginManager as the components."""

from __future__ import annotations

from hookspecs.textpipe import Settings, hookimpl


class TitleCase:
    """Title-cases text and remembers the configured maximum length."""

    def __init__(self) -> None:
        self.max_length = 0

    @hookimpl
    def configure(self, settings: Settings) -> None:
        self.max_length = settings.max_length

    @hookimpl(trylast=True)
    def transform(self, text: str) -> str:
        title = text.title()
        return title if not self.max_length else title[: self.max_length]
