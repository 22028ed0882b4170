"""The rate limit of a plugin's stdout, stderr and ``log`` records (``_ratelimit``), on a
clock the test moves."""

from __future__ import annotations

import logging

import pytest

from airssys_plugins import _log, _ratelimit


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> _Clock:
    fake = _Clock()
    # the module's clock only: patching time.monotonic would move the epoch thread's too
    monkeypatch.setattr(_ratelimit, "_now", fake)
    return fake


def test_burst_then_rate_and_every_drop_counted(
    clock: _Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A burst of BURST records, then PER_SECOND a second; the records dropped meanwhile
    are all counted in the warnings, which come at most once a WARN_EVERY seconds."""
    limit = _ratelimit.RateLimit(_log.getLogger("airssys_plugins.plugin.t"), "t", "log")
    with caplog.at_level(logging.WARNING, logger="airssys_plugins.plugin.t"):
        assert all(limit.allow() for _ in range(_ratelimit.BURST))
        assert not limit.allow()  # the burst is spent
        allowed = 0
        for _ in range(1000):  # a flood of 1000 records a second, for a second
            clock.now += 0.001
            allowed += limit.allow()
        clock.now += _ratelimit.WARN_EVERY
        assert limit.allow()
    assert allowed == pytest.approx(_ratelimit.PER_SECOND, abs=1)
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings[0] == "plugin t: log rate limit reached (50 lines/s); dropping lines"
    assert len(warnings) == 2
    assert warnings[1] == f"plugin t: {1 + 1000 - allowed} log line(s) dropped (rate limit)"
    assert limit.dropped == 0


def test_refills_to_the_burst_only(clock: _Clock) -> None:
    """An idle stream gets its burst back, never more."""
    limit = _ratelimit.RateLimit(_log.getLogger("airssys_plugins.plugin.t"), "t", "stdout")
    assert all(limit.allow() for _ in range(_ratelimit.BURST))
    clock.now += 3600
    assert sum(limit.allow() for _ in range(2 * _ratelimit.BURST)) == _ratelimit.BURST
