"""Progress on stderr while the CLIs do slow work (building, first-time compiling).

On a terminal a rich spinner shows what is happening with the time elapsed, and each
finished step stays as a line with its duration; elsewhere (a pipe, a log, CI) the steps
are plain lines. ``AIRSSYS_PLUGINS_PROGRESS`` overrides the choice: ``always`` (the
spinner even without a terminal), ``plain`` (lines only), ``never`` (nothing), ``auto``
(the default).

Where a CLI makes the host, the host tells its slow steps to :meth:`Activity.on_load`
(``PluginHost(on_progress=activity.on_load)``). Other slow work (building, describing a
component) is reported through logging (``airssys_plugins.build``,
``airssys_plugins.runtime``); an :class:`Activity` turns those records into steps while it
is open.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Final, Literal, TextIO

if TYPE_CHECKING:
    from ..host.settings import LoadProgress

__all__ = ["MODE_ENV", "Activity", "progress_mode"]

MODE_ENV: Final = "AIRSSYS_PLUGINS_PROGRESS"
Mode = Literal["live", "plain", "off"]
_MODES: Final[dict[str, Mode]] = {
    "always": "live",
    "live": "live",
    "plain": "plain",
    "never": "off",
    "off": "off",
}


def progress_mode(stream: TextIO | None = None) -> Mode:
    """``live`` on a terminal (or when forced), ``plain`` otherwise; see the module doc."""
    stream = stream if stream is not None else sys.stderr
    value = os.environ.get(MODE_ENV, "auto").strip().lower()
    if value in _MODES:
        return _MODES[value]
    isatty = getattr(stream, "isatty", None)
    return "live" if callable(isatty) and isatty() else "plain"


#: First words of the library's messages that report a step as finished, with its time.
_DONE_WORDS: Final = frozenset({"built", "compiled", "installed"})


class _Bridge(logging.Handler):
    """Hands the library's INFO records to the activity as steps."""

    def __init__(self, activity: Activity) -> None:
        super().__init__(logging.INFO)
        self.activity = activity

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING:
            self.activity.step(record.getMessage())


class Activity:
    """``with Activity("checking shout") as act: ... act.step("compiling ...")``.

    ``what`` is shown on the spinner until the first step (plain output starts with the
    first step, so a fast run on a warm cache prints nothing). ``logs`` are the loggers
    whose INFO records become steps while the activity is open; ``prefix`` starts each
    plain line (``"textpipe: "``).
    """

    def __init__(
        self,
        what: str,
        *,
        quiet: bool = False,
        stream: TextIO | None = None,
        logs: Sequence[str] = ("airssys_plugins.runtime",),
        prefix: str = "",
    ) -> None:
        self.what = what
        self.prefix = prefix
        self.stream = stream if stream is not None else sys.stderr
        self.mode: Mode = "off" if quiet else progress_mode(self.stream)
        self.logs = tuple(logs)
        self._saved: list[tuple[logging.Logger, int, bool]] = []
        self._bridge = _Bridge(self)
        self._current: str | None = None
        self._since = time.perf_counter()
        self._live: object = None  # rich.progress.Progress, imported only when shown
        self._task: object = None
        self._open = False
        self._compiling: tuple[str, float] | None = None  # plugin, elapsed when it began

    def __enter__(self) -> Activity:
        if self.mode == "live":
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            console = Console(file=self.stream, force_terminal=True, highlight=False)
            live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self._task = live.add_task(self.what, total=None)
            live.start()
            self._live = live
        self._open = True
        if self.mode != "off":
            for name in self.logs:
                logger = logging.getLogger(name)
                self._saved.append((logger, logger.level, logger.propagate))
                logger.setLevel(logging.INFO)
                logger.propagate = False  # shown here; a root handler would say it twice
                logger.addHandler(self._bridge)
        return self

    def on_load(self, event: LoadProgress) -> None:
        """``PluginHost(on_progress=activity.on_load)``: a first-time compile is a step
        ("compiling wordstats (18.3 MB), first time only", then "compiled wordstats in
        9.8 s"); fast stages say nothing. Ignored while the activity is not open."""
        if not self._open:
            return
        if event.stage == "compiling":
            size = event.detail.rsplit(", ", 1)[-1]
            self._compiling = (event.plugin, event.elapsed)
            self.step(f"compiling {event.plugin} ({size}), first time only")
        elif self._compiling is not None and self._compiling[0] == event.plugin:
            took = event.elapsed - self._compiling[1]
            self._compiling = None
            self.step(f"compiled {event.plugin} in {took:.1f} s")

    def step(self, message: str) -> None:
        """Say what is happening now (the previous step is done). A message that reports
        a finished step ("built ...", "compiled ...") closes the running one instead."""
        done = message.split(" ", 1)[0] in _DONE_WORDS
        if self.mode == "plain":
            print(f"{self.prefix}{message}", file=self.stream, flush=True)
        if self.mode != "live":
            return
        from rich.progress import Progress, TaskID

        assert isinstance(self._live, Progress)
        assert isinstance(self._task, int)
        if done:
            self._current = None  # the message says it, with its own duration
            self._print_done(message, None)
        else:
            self._finish_step()
            self._current = message
            self._since = time.perf_counter()
        # drawn now, not at the next refresh: a step that ends before it (a fast build on
        # a busy machine) is still seen
        self._live.update(TaskID(self._task), description=self._current or self.what, refresh=True)

    def _finish_step(self) -> None:
        if self.mode != "live" or self._current is None:
            return
        self._print_done(self._current, time.perf_counter() - self._since)
        self._current = None

    def _print_done(self, message: str, took: float | None) -> None:
        from rich.markup import escape
        from rich.progress import Progress

        assert isinstance(self._live, Progress)
        duration = f" [dim]({took:.1f} s)[/]" if took is not None else ""
        self._live.console.print(f"[green]✓[/] {escape(message)}{duration}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for logger, level, propagate in self._saved:
            logger.removeHandler(self._bridge)
            logger.setLevel(level)
            logger.propagate = propagate
        self._saved.clear()
        self._open = False
        if self.mode == "live":
            from rich.progress import Progress

            if exc_type is None:
                self._finish_step()
            assert isinstance(self._live, Progress)
            self._live.stop()
