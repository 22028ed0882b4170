"""Plugin subcommands: ``list``, ``lock``, ``enable``, ``disable``.

airssys-plugins list    [--app APP] [--contract MODULE:OBJECT] [--dir DIR]... [--json]
airssys-plugins lock    [--app APP] [--contract MODULE:OBJECT] [--dir DIR]... [-o FILE]
airssys-plugins enable  NAME --app APP [--dir DIR]... [--force]
airssys-plugins disable NAME --app APP [--dir DIR]... [--force]

``list`` with ``--contract`` loads the plugins together into a throwaway host and shows
the links it made between them (which provider serves which import, at which version);
it also shows the links of the app's running host, from its status file
(:mod:`airssys_plugins.host.status`), saying whether that host is live.

Exit codes: 0 all well; 1 a plugin is broken (``list``, ``lock``) or an error occurred;
2 usage error.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .. import _attrs as attrs
from .._errors import PluginError
from ..contract import wit
from ..discovery.lockfile import LockEntry, Lockfile
from ..discovery.sources import Discovery, PluginShadowedWarning, PluginSource, discover_plugins
from ..discovery.state import PluginState
from ..host.composition import LinkInfo
from ..host.loading import LoadReport, PluginStatus
from ..host.status import StatusFile, StatusFileError, freshness
from ..host.supervision import CircuitFile
from ..policy.capabilities import PluginLink
from .common import contract_of, load_object, project_of, quiet_loader, versions_of
from .progress import Activity

__all__ = ["import_links", "register", "table"]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, two spaces apart, a rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"


@contextmanager
def _shadow_warnings() -> Iterator[None]:
    """Print duplicate-name warnings as ``warning: ...`` lines, each once, after discovery."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginShadowedWarning)
        yield
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)


def _app_and_spec(args: argparse.Namespace) -> tuple[str, object | None]:
    spec = load_object(args.spec) if args.spec else None
    app = args.app or (project_of(spec) if spec is not None else None)
    if not app:
        raise SystemExit("error: give --app NAME, or --contract MODULE:OBJECT to name the app")
    return app, spec


def _discover(args: argparse.Namespace, app: str) -> Discovery:
    with _shadow_warnings():
        return discover_plugins(
            app,
            args.dirs,
            user_dirs=not args.no_user_dirs,
            site_dirs=not args.no_site_dirs,
            packs=not args.no_packs,
        )


def _load(
    args: argparse.Namespace, spec: object, found: Discovery, **kw: Any
) -> tuple[LoadReport, list[LinkInfo]]:
    """Load every plugin found into a throwaway host, to report what would happen (and
    which links between them it made)."""
    import pluggy

    from ..host.plugin_host import PluginHost

    contract = contract_of(args, spec)
    pm = pluggy.PluginManager(args.project or project_of(spec))
    pm.add_hookspecs(spec)  # type: ignore[arg-type]  # a class or module, checked above
    # The report shows every failure; the loader's log lines would say it all twice.
    activity = Activity(f"loading {len(found)} plugin(s) of {found.app}", logs=())
    with (
        quiet_loader(),
        PluginHost(
            pm,
            package=str(contract.package),
            grants=args.grants,
            versions=versions_of(spec),
            on_progress=activity.on_load,  # the host tells the activity its slow steps
        ) as host,
        activity,
    ):
        report = host.load_plugins(found, **kw)
        return report, host.links()


def _found_only(found: Discovery) -> LoadReport:
    """Without a contract nothing is loaded: each plugin is found, disabled or broken."""
    entries: list[PluginStatus] = []
    for s in found:
        if not s.enabled:
            entries.append(PluginStatus(s, "disabled", note="disabled by the operator"))
        elif s.error is not None:
            entries.append(PluginStatus(s, "broken", error=s.error))
        else:
            entries.append(PluginStatus(s, "loaded", note="found (give --contract to load it)"))
    for loser, winner in found.shadowed:
        entries.append(PluginStatus(loser, "shadowed", note=f"shadowed by {winner.where}"))
    return LoadReport(tuple(entries))


def _status_word(entry: PluginStatus, checked: bool, circuits: dict[str, Any] | None = None) -> str:
    circuit = (circuits or {}).get(entry.name)
    if circuit is not None and entry.status == "loaded":
        return "open (circuit)"
    if entry.status == "loaded" and not checked:
        return "found"
    if entry.status == "broken" and entry.error is not None:
        return f"broken ({type(entry.error).__name__})"
    return entry.status


def _row(
    entry: PluginStatus,
    checked: bool,
    circuits: dict[str, Any] | None = None,
    current: str | None = None,
) -> list[str]:
    s = entry.source
    hooks = sorted(entry.plugin.hooks) if entry.plugin is not None else []
    caps = s.manifest.capabilities.summary() if s.manifest is not None else []
    older = _older_contract(entry, current)
    return [
        s.name,
        s.version,
        s.where_short,
        (", ".join(hooks) or "-") + (f" (contract {older})" if older else ""),
        ", ".join(caps) or "-",
        _status_word(entry, checked, circuits),
    ]


def _older_contract(entry: PluginStatus, current: str | None) -> str | None:
    """The contract version a plugin uses, when it is not the app's ``current`` one (an
    older version the app accepts through ``CONTRACT_VERSIONS``)."""
    plugin = entry.plugin
    used = None if plugin is None else plugin.contract_version
    return used if current is not None and used not in (None, current) else None


def _json_row(entry: PluginStatus, checked: bool) -> dict[str, Any]:
    s = entry.source
    return {
        "name": s.name,
        "version": None if s.manifest is None else s.manifest.version,
        "source": {
            "kind": s.kind,
            "origin": s.origin,
            "path": None if s.path is None else str(s.path),
            "component": None if s.component is None else str(s.component),
        },
        "hooks": {} if entry.plugin is None else dict(sorted(entry.plugin.hooks.items())),
        "capabilities": [] if s.manifest is None else s.manifest.capabilities.summary(),
        "status": _status_word(entry, checked).split(" ")[0],
        "enabled": s.enabled,
        "reason": None if entry.error is None else str(entry.error),
        "note": entry.note or None,
        "sha256": None if entry.plugin is None else entry.plugin.sha256,
        "contract": None if entry.plugin is None else entry.plugin.contract_version,
    }


def _link_json(link: LinkInfo | dict[str, Any]) -> dict[str, Any]:
    data = attrs.asdict(link) if isinstance(link, LinkInfo) else dict(link)
    return {k: data.get(k) for k in ("provider", "interface", "versions", "served", "state")}


def _link_line(link: Mapping[str, Any]) -> str:
    served = f"served as {link['served']}" if link.get("served") else "no provider loaded"
    return (
        f"  {link.get('importer')} imports {link.get('interface')} from plugin "
        f"{link.get('provider')!r} (range {link.get('versions')}): {link.get('state')}, {served}"
    )


def _live_links(app: str) -> tuple[str, list[dict[str, Any]]] | None:
    """The links of the app's running (or last) host, from its status file, and a note
    saying how current they are; None without a readable file."""
    try:
        data = StatusFile.for_app(app).read()
    except StatusFileError as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return None
    if data is None:
        return None
    links = [x for x in data.get("links") or [] if isinstance(x, dict)]
    return freshness(data)[1], links


def _cmd_list(args: argparse.Namespace) -> int:
    app, spec = _app_and_spec(args)
    found = _discover(args, app)
    checked = spec is not None
    links: list[LinkInfo] = []
    if checked:
        report, links = _load(args, spec, found, lockfile=args.lockfile)
    else:
        report = _found_only(found)
    live = _live_links(app)
    if args.json:
        rows = []
        for e in report:
            row = _json_row(e, checked)
            row["links"] = [_link_json(x) for x in links if x.importer == e.name]
            if live is not None:
                row["live_links"] = [_link_json(x) for x in live[1] if x.get("importer") == e.name]
            rows.append(row)
        print(json.dumps(rows, indent=2))
        return 1 if report.broken else 0
    print(f"plugins of {app} (searched: {'; '.join(found.searched)})")
    if not report.entries:
        print("no plugins found")
        _print_links(links, live)
        return 0
    circuits = CircuitFile.for_app(app).read()
    header = ["NAME", "VERSION", "SOURCE", "HOOKS", "CAPABILITIES", "STATUS"]
    current = str(contract_of(args, spec).package) if spec is not None else None
    sys.stdout.write(table(header, [_row(e, checked, circuits, current) for e in report]))
    notes = [e for e in report if e.error is not None or (e.note and e.status != "loaded")]
    for e in notes:
        print(f"\n{e.name} ({e.status}): {e.error if e.error is not None else e.note}")
    for name, circuit in sorted(circuits.items()):
        print(f"\n{name} (circuit open in a running host): {circuit.get('reason')}")
    _print_links(links, live)
    return 1 if report.broken else 0


def _print_links(links: list[LinkInfo], live: tuple[str, list[dict[str, Any]]] | None) -> None:
    if links:
        print("\nlinks between these plugins, loaded together:")
        for link in links:
            print(_link_line(attrs.asdict(link)))
    if live is not None and live[1]:
        print(f"\nlinks in the app's host ({live[0]}):")
        for data in live[1]:
            print(_link_line(data))


def import_links(
    plugin: str,
    imports: Iterable[str],
    requested: Iterable[str | PluginLink] = (),
    *,
    app: str | None = None,
) -> list[str]:
    """Lines saying how each interface a component imports would be served, for
    ``inspect``: a host interface (``wasi:``, ``airssys:host``), a link to another plugin
    its manifest asks for (``requested``), or nothing; with ``app``, the link as the app's
    running host made it (from its status file). Empty when it imports only host
    interfaces and no host has linked it."""
    links = [x if isinstance(x, PluginLink) else PluginLink.parse(x) for x in requested]
    live = _live_links(app) if app is not None else None
    mine = [x for x in live[1] if x.get("importer") == plugin] if live is not None else []
    lines: list[str] = []
    for name in sorted(set(imports)):
        if name.startswith(("wasi:", "airssys:host/")) or ":" not in name:
            continue
        bare = wit.unversioned(name)
        link = next((x for x in sorted(links, key=str) if x.interface == bare), None)
        if link is None:
            lines.append(
                f"  {name}: no link asked for; the host refuses the plugin unless the app "
                f'provides it (host.provide) or its manifest asks plugins = ["<provider>:{bare}"]'
            )
        else:
            lines.append(
                f"  {name}: from plugin {link.provider!r} (a link, range {link.versions}), "
                "as its manifest asks; the operator must grant it"
            )
    if live is not None and mine:
        lines.append(f"in the app's host ({live[0]}):")
        lines += [_link_line(x) for x in mine]
    return ["links:", *lines] if lines else []


def _cmd_lock(args: argparse.Namespace) -> int:
    app, spec = _app_and_spec(args)
    found = _discover(args, app)
    usable: list[PluginSource] = list(found)
    failed: list[tuple[PluginSource, PluginError]] = []
    if spec is not None:
        report, _ = _load(args, spec, found)
        failed += [(e.source, e.error) for e in report.broken if e.error is not None]
        usable = [e.source for e in report if e.status in ("loaded", "disabled")]
    entries: list[LockEntry] = []
    for source in usable:
        if source.error is not None:
            failed.append((source, source.error))
            continue
        try:
            _, digest = source.read_component()
        except PluginError as exc:
            failed.append((source, exc))
            continue
        entries.append(LockEntry.for_source(source, digest))
    lock = Lockfile.from_entries(app, entries)
    path = lock.write(args.output)
    for entry in sorted(entries, key=lambda e: e.name):
        print(f"locked {entry.name} {entry.version}  {entry.source}  sha256 {entry.sha256[:16]}…")
    print(f"wrote {path} ({len(entries)} plugin(s) of {app})")
    for source, error in failed:
        print(f"left out {source.name}: {error}", file=sys.stderr)
    return 1 if failed else 0


def _check_name(args: argparse.Namespace, state: PluginState) -> None:
    """Exit unless ``args.name`` is a plugin the app has (found, or already in the
    settings), saying which names are close: a typo must not pass silently."""
    found = _discover(args, args.app)
    known = {s.name for s in found} | {loser.name for loser, _ in found.shadowed}
    known |= set(state.disabled)
    if args.name in known:
        return
    close = difflib.get_close_matches(args.name, sorted(known), n=3, cutoff=0.6)
    guess = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    names = f" (found: {', '.join(sorted(known))})" if known and not close else ""
    raise SystemExit(
        f"error: {args.app} has no plugin named {args.name!r}{guess}{names}\n"
        f"searched: {'; '.join(found.searched)}\n"
        "For a plugin in a directory the app adds itself, give --dir DIR; to record the "
        "setting anyway, add --force."
    )


def _cmd_enable(args: argparse.Namespace, enabled: bool) -> int:
    state = PluginState.for_app(args.app)
    if not args.force:
        _check_name(args, state)
    changed = state.set_enabled(args.name, enabled)
    word = "enabled" if enabled else "disabled"
    print(f"{args.name} {word if changed else 'was already ' + word} for {args.app} ({state.path})")
    return 0


def _add_search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--app", help="the app's name: <app> in dirs and <app>.components packs")
    p.add_argument(
        "--contract",
        dest="spec",
        metavar="MODULE:OBJECT",
        help="hookspecs to load the plugins against (default app name: their pluggy project)",
    )
    p.add_argument("--package", help="WIT package id of the contract")
    p.add_argument("--project", help="pluggy project name (detected from the markers)")
    p.add_argument(
        "--dir",
        dest="dirs",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a plugin directory or single plugin, searched first (repeatable, in order)",
    )
    p.add_argument("--no-user-dirs", action="store_true", help="skip the user data dir")
    p.add_argument("--no-site-dirs", action="store_true", help="skip the site data dirs")
    p.add_argument("--no-packs", action="store_true", help="skip pip component packs")
    p.add_argument("--grants", metavar="FILE", help="the operator's grants file (TOML)")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "list", help="list the plugins an app would find, and what loading them does"
    )
    _add_search_options(p)
    p.add_argument("--lockfile", metavar="FILE", help="check the plugins against this lockfile")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("lock", help="pin the plugins found (sha256, capabilities) in a lockfile")
    _add_search_options(p)
    p.add_argument(
        "-o", "--output", default="plugins.lock", help="lockfile to write (default plugins.lock)"
    )
    p.set_defaults(func=_cmd_lock)

    for word, enabled in (("enable", True), ("disable", False)):
        p = sub.add_parser(word, help=f"{word} a plugin of an app (a persisted setting)")
        p.add_argument("name", metavar="NAME", help="the plugin's name (as `list` shows it)")
        p.add_argument("--app", required=True, help="the app's name")
        p.add_argument(
            "--dir",
            dest="dirs",
            action="append",
            default=[],
            type=Path,
            metavar="DIR",
            help="also look for the plugin here (repeatable)",
        )
        p.add_argument(
            "--force", action="store_true", help="record the setting without finding the plugin"
        )
        p.set_defaults(no_user_dirs=False, no_site_dirs=False, no_packs=False)
        p.set_defaults(func=lambda args, e=enabled: _cmd_enable(args, e))
