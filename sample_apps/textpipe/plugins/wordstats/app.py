"""wordstats: a componentize-py guest for the `textpipe:hooks@1.0.0` package.

It implements the `configure`, `detect-language` and `analyze` hooks (see
`wit/guest.wit`). componentize-py maps the WIT world `guest` onto Python like this:

* Each exported interface becomes a Protocol class in `wit_world.exports`, named in
  CamelCase (`detect-language` -> `DetectLanguage`). The guest subclasses it with a
  class of the *same name* in this module (`app`), which componentize-py looks up.
* Each function becomes a method in snake_case (`detect-language` ->
  `detect_language`); kebab-case record fields become snake_case attributes
  (`max-length` -> `max_length`).
* Records are dataclasses in `wit_world.exports.<interface>` (`configure.Settings`,
  `analyze.Stat`); `option<string>` is `str | None`, `list<T>` is `list[T]`, `u32`
  is `int`, `f64` is `float`.

Build (from this directory): `componentize-py -d wit/ -w guest componentize app -o out.wasm`
To browse the generated API: `componentize-py -d wit/ -w guest bindings <dir>`
"""

from __future__ import annotations

import re

from wit_world import exports
from wit_world.exports.analyze import Stat
from wit_world.exports.configure import Settings

# Settings from the last `configure` call; None until the host configures us.
_settings: Settings | None = None

# A word is a run of letters/digits, optionally joined by apostrophes ("don't").
_WORD_RE = re.compile(r"\w+(?:'\w+)*")

_ENGLISH = frozenset({"the", "and", "is", "of", "to", "a", "in", "it", "hello", "this", "that"})
_GERMAN = frozenset({"der", "die", "das", "und", "ist", "nicht", "ein", "eine", "hallo", "ich"})


def _words(text: str) -> list[str]:
    return _WORD_RE.findall(text)


class Configure(exports.Configure):
    def configure(self, settings: Settings) -> None:
        global _settings
        _settings = settings


class DetectLanguage(exports.DetectLanguage):
    def detect_language(self, text: str) -> str | None:
        """Count common English and German words; the language with more hits wins.

        No hits, or a tie, answers None so another plugin can decide.
        """
        words = [w.lower() for w in _words(text)]
        en = sum(w in _ENGLISH for w in words)
        de = sum(w in _GERMAN for w in words)
        if en > de:
            return "en"
        if de > en:
            return "de"
        return None


class Analyze(exports.Analyze):
    def analyze(self, text: str) -> list[Stat]:
        words = _words(text)
        average = sum(map(len, words)) / len(words) if words else 0.0
        max_length = _settings.max_length if _settings is not None else 0
        return [
            Stat("words", float(len(words))),
            Stat("characters", float(len(text))),
            Stat("average-word-length", round(average, 2)),
            Stat("max-length", float(max_length)),
        ]
