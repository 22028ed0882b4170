"""``airssys-plugins map``: run one hook over a JSON-lines batch, on local cores or Dask."""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from .. import _attrs as attrs
from .._errors import PluginError
from .common import SPEC_HELP, contract_of, load_object, project_of, quiet_loader

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "map",
        help="call a hook once per item of a JSON-lines file, in parallel (local cores or Dask)",
        description=(
            "Load the plugins of DIR against the contract, then call HOOK once per line of "
            "the input (a JSON object of the hook's arguments) in worker processes. Writes "
            'one JSON line per item, in input order: {"index": N, "result": ...} or '
            '{"index": N, "error": "...", "type": "..."}. Exit status 1 if any item failed.'
        ),
    )
    p.add_argument("hook", metavar="HOOK", help="the hook to call (its Python name)")
    p.add_argument("--contract", required=True, metavar="MODULE:OBJECT", help=SPEC_HELP)
    p.add_argument("--package", help="WIT package id of the contract")
    p.add_argument("--project", help="pluggy project name (detected from the markers)")
    p.add_argument(
        "--plugins",
        dest="dirs",
        action="append",
        required=True,
        type=Path,
        metavar="DIR",
        help="a directory of plugins to load (repeatable)",
    )
    p.add_argument("--grants", metavar="FILE", help="the operator's grants file (TOML)")
    p.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help="JSON lines, one object per item ('-': stdin)",
    )
    p.add_argument("-o", "--output", metavar="FILE", help="where to write results (default stdout)")
    p.add_argument(
        "--scheduler",
        metavar="ADDR",
        help="a Dask scheduler (tcp://host:8786) to run on; default: local processes",
    )
    p.add_argument(
        "--processes", type=int, metavar="N", help="local worker processes (default: CPUs)"
    )
    p.add_argument("--chunksize", type=int, metavar="N", help="items per task (default: automatic)")
    p.add_argument(
        "--max-retries",
        type=int,
        default=2,
        metavar="N",
        help="re-runs of an item whose worker died (default 2)",
    )
    p.add_argument(
        "--fail-fast", action="store_true", help="stop at the first failed item (exit status 1)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.set_defaults(func=_cmd_map)


def _cmd_map(args: argparse.Namespace) -> int:
    import pluggy

    from ..discovery.sources import discover_plugins
    from ..host.plugin_host import PluginHost

    items = list(_read_items(args.input))
    spec = load_object(args.contract)
    contract = contract_of(args, spec)
    pm = pluggy.PluginManager(args.project or project_of(spec))
    pm.add_hookspecs(spec)  # type: ignore[arg-type]  # a class or module, checked above
    if args.hook not in contract.hooks:
        raise SystemExit(
            f"error: {args.hook!r} is not a hook of {args.contract} "
            f"(hooks: {', '.join(sorted(contract.hooks))})"
        )
    found = discover_plugins(
        pm.project_name, args.dirs, user_dirs=False, site_dirs=False, packs=False
    )
    client = _client(args.scheduler)
    out = sys.stdout if args.output is None else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        with PluginHost(pm, package=str(contract.package), grants=args.grants) as host:
            with quiet_loader():
                host.load_plugins(found, strict=True)
            return _run(host, args, items, client, out)
    finally:
        if out is not sys.stdout:
            out.close()
        if client is not None:
            client.close()


def _run(
    host: Any, args: argparse.Namespace, items: list[dict[str, Any]], client: Any, out: IO[str]
) -> int:
    options: dict[str, Any] = {
        "policy": "raise" if args.fail_fast else "skip",
        "progress": not args.no_progress,
        "max_retries": args.max_retries,
        "chunksize": args.chunksize,
    }
    if client is not None:
        options["client"] = client
    else:
        options["processes"] = args.processes
    run = host.imap(args.hook, items, **options)
    writer = _InOrder(out)
    failures = run.report.failures
    seen = 0  # failures written so far (the dict only grows)
    try:
        for index, value in run:
            writer.put(index, {"index": index, "result": value})
            if len(failures) > seen:
                for failed in list(failures)[seen:]:
                    writer.put(failed, _error_line(failed, failures[failed]))
                seen = len(failures)
    except KeyboardInterrupt:
        run.close()  # stops the batch whether Ctrl-C came inside it or in this loop
        writer.flush_ready()
        print(
            f"interrupted: {run.report.done} of {len(items)} item(s) done; "
            f"{writer.written} written in input order",
            file=sys.stderr,
        )
        return 130
    except PluginError as exc:  # --fail-fast
        writer.flush_ready()
        print(f"error: item failed, stopping (--fail-fast): {exc}", file=sys.stderr)
        return 1
    for index, error in run.report.failures.items():
        writer.put(index, _error_line(index, error))
    report = run.report
    if report.retried:
        print(
            f"{len(report.retried)} item(s) were run again after their worker died: "
            + ", ".join(str(i) for i in sorted(report.retried)[:20]),
            file=sys.stderr,
        )
    if report.failures:
        print(f"{len(report.failures)} of {len(items)} item(s) failed", file=sys.stderr)
    return 1 if report.failures else 0


def _error_line(index: int, error: PluginError) -> dict[str, Any]:
    return {
        "index": index,
        "error": str(error),
        "type": type(error).__name__,
        "plugin": error.plugin,
    }


class _InOrder:
    """Writes lines in index order as soon as every earlier index has been written."""

    def __init__(self, out: IO[str]):
        self.out = out
        self.written = 0
        self._waiting: dict[int, dict[str, Any]] = {}

    def put(self, index: int, line: dict[str, Any]) -> None:
        if index >= self.written and index not in self._waiting:
            self._waiting[index] = line
        self.flush_ready()

    def flush_ready(self) -> None:
        while self.written in self._waiting:
            line = self._waiting.pop(self.written)
            self.out.write(json.dumps(line, default=_jsonable) + "\n")
            self.written += 1
        self.out.flush()


def _jsonable(value: Any) -> Any:
    if attrs.has(type(value)):
        return attrs.asdict(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


def _read_items(source: str) -> Iterator[dict[str, Any]]:
    try:
        stream = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    except OSError as exc:
        raise SystemExit(f"error: cannot read {source}: {exc.strerror or exc}") from exc
    with stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"error: {source}, line {number}: not JSON ({exc})") from exc
            if not isinstance(item, Mapping):
                raise SystemExit(
                    f"error: {source}, line {number}: a {type(item).__name__}, not an object "
                    'of the hook\'s arguments (e.g. {"text": "hi"})'
                )
            yield dict(item)


def _client(address: str | None) -> Any:
    if address is None:
        return None
    try:
        from distributed import Client
    except ImportError:
        raise SystemExit(
            "error: --scheduler needs Dask: pip install 'airssys-plugins[dask]'"
        ) from None
    try:
        return Client(address, timeout=10)  # type: ignore[no-untyped-call]
    except OSError as exc:
        raise SystemExit(f"error: cannot reach the Dask scheduler at {address}: {exc}") from exc
