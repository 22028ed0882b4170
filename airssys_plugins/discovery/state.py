"""Which plugins the operator disabled: a small TOML file in the app's user config dir.

``<user config dir>/<app>/plugins.toml`` (``~/.config/textpipe/plugins.toml`` on Linux)::

    # Written by `airssys-plugins enable/disable`.
    disabled = ["shout"]

A disabled plugin is still found and listed, but not loaded. Nothing is deleted.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Final, final

import tomli_w

from .. import _attrs as attrs
from .._errors import PluginError
from .._files import atomic_write, read_metadata_file

__all__ = ["PluginState", "StateFileError"]

_HEADER: Final = (
    "# Plugins disabled for this app: `airssys-plugins enable/disable NAME --app APP` edits\n"
    "# this file. A disabled plugin is found and listed, but not loaded.\n"
)


class StateFileError(PluginError, ValueError):
    """The enable/disable settings file is unreadable or malformed."""


@final
@attrs.frozen
class PluginState:
    """The enable/disable settings of one app, stored at ``path``."""

    path: Path

    @classmethod
    def for_app(cls, app: str) -> PluginState:
        """The settings file of ``app`` in its platformdirs user config dir."""
        import platformdirs  # on first use: ~10 ms of every start otherwise

        return cls(Path(platformdirs.user_config_dir(app)) / "plugins.toml")

    @property
    def disabled(self) -> frozenset[str]:
        """Names of the disabled plugins (none if the file does not exist)."""
        try:
            if not os.path.lexists(self.path):
                return frozenset()
            text = read_metadata_file(self.path, what="plugin settings").decode("utf-8")
        except FileNotFoundError:
            return frozenset()
        except OSError as exc:
            raise StateFileError(
                f"cannot read the plugin settings {self.path}: {exc.strerror or exc}"
            ) from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise StateFileError(
                f"the plugin settings {self.path} are not valid TOML ({exc}); fix or delete "
                "the file (deleting it enables every plugin)"
            ) from exc
        names = data.get("disabled", [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise StateFileError(
                f'{self.path}: disabled must be an array of plugin names, e.g. disabled = ["shout"]'
            )
        return frozenset(names)

    def is_enabled(self, name: str) -> bool:
        return name not in self.disabled

    def set_enabled(self, name: str, enabled: bool) -> bool:
        """Enable or disable ``name``; returns whether the setting changed."""
        disabled = set(self.disabled)
        before = name in disabled
        if enabled:
            disabled.discard(name)
        else:
            disabled.add(name)
        if before == (name in disabled):
            return False
        self._write(sorted(disabled))
        return True

    def _write(self, disabled: list[str]) -> None:
        atomic_write(self.path, _HEADER + tomli_w.dumps({"disabled": disabled}))
