"""``airssys-plugins bindgen``: hookspecs (Python) from WIT, for WIT-first hosts.

airssys-plugins bindgen WIT_DIR_OR_COMPONENT [--world W] [--project NAME] [-o module.py]
airssys-plugins bindgen --stub-for MODULE:OBJECT [-o relay.py]

The WIT is read by ``wasm-tools component wit --json`` (a WIT file or directory with its
``deps/``, or a built component's embedded WIT); the module is written by
:mod:`airssys_plugins.contract.bindgen`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from .._files import atomic_write
from .common import SPEC_HELP, contract_of, existing_path, load_object

__all__ = ["read_wit_json", "register"]


def read_wit_json(path: Path) -> dict[str, Any]:
    """wasm-tools' resolved JSON of the WIT at ``path`` (WIT file, directory or component)."""
    from ..authoring.build import BuildError, find_tool

    tool = find_tool("wasm-tools")
    try:
        done = subprocess.run(
            [tool, "component", "wit", "--json", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"wasm-tools could not read {path}: {exc}") from exc
    if done.returncode != 0:
        reason = done.stderr.strip() or f"exit status {done.returncode}"
        raise BuildError(f"wasm-tools cannot read the WIT of {path}:\n{reason}")
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def _write(path: str | None, text: str, what: str) -> None:
    if path is None:
        sys.stdout.write(text)
        return
    atomic_write(path, text)
    print(f"wrote {path} ({what})", file=sys.stderr)


def _cmd_bindgen(args: argparse.Namespace) -> int:
    from ..contract.bindgen import hookspec_module, relay_module

    if args.stub_for:
        if args.source:
            raise SystemExit("error: give WIT_DIR_OR_COMPONENT or --stub-for, not both")
        obj = load_object(args.stub_for)
        args.package = None
        contract = contract_of(args, obj)
        text = relay_module(contract, obj, spec_ref=args.stub_for)
        _write(args.output, text, f"HookRelay for {len(contract.hooks)} hook(s)")
        return 0
    if not args.source:
        raise SystemExit("error: give a WIT directory, WIT file or component (or --stub-for)")
    from ..contract.wit_json import Resolved

    source = existing_path(args.source)
    world = Resolved(read_wit_json(source)).world(args.world)
    generated = hookspec_module(world, project=args.project, source=f"`{source.name}`")
    for where, why in generated.skipped:
        print(f"skipped {where}: {why}", file=sys.stderr)
    _write(
        args.output,
        generated.text,
        f"{len(generated.hooks)} hook(s) of world {world.world}, {len(generated.skipped)} skipped",
    )
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "bindgen", help="write Python hookspecs (bound to the WIT) for a WIT package or component"
    )
    p.add_argument(
        "source",
        nargs="?",
        metavar="WIT_DIR_OR_COMPONENT",
        help="a WIT directory (with deps/), a .wit file, or a component (.wasm)",
    )
    p.add_argument("--world", help="the world whose exports become hooks (default: the only one)")
    p.add_argument("--project", help="pluggy project name (default: the WIT package's name)")
    p.add_argument("-o", "--output", help="write the module to this file instead of stdout")
    p.add_argument(
        "--stub-for",
        metavar="MODULE:OBJECT",
        help=f"instead: a typed HookRelay module for hand-written hookspecs ({SPEC_HELP})",
    )
    p.set_defaults(func=_cmd_bindgen)
