"""``airssys-plugins compose``: fuse provider components into a consumer, offline.

airssys-plugins compose CONSUMER.wasm PROVIDER.wasm [PROVIDER.wasm ...] -o FUSED.wasm

The tool is wac when installed, else ``wasm-tools compose``
(:mod:`airssys_plugins.authoring.compose`); the command says which, with its version,
which imports the providers satisfied and what the fused component still imports.
"""

from __future__ import annotations

import argparse
import sys

from .common import existing_path

__all__ = ["register"]


def _cmd_compose(args: argparse.Namespace) -> int:
    from ..authoring.compose import compose_components

    consumer = existing_path(args.consumer)
    providers = [existing_path(p) for p in args.providers]
    result = compose_components(consumer, providers, args.output)
    print(f"composed with {result.tool}", file=sys.stderr)
    print(f"wrote {result.path}")
    print(f"  satisfied: {', '.join(result.satisfied)}")
    print(f"  imports:   {', '.join(result.imports) or '(nothing)'}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compose",
        help="fuse provider components into a consumer (wac or wasm-tools compose)",
        description=(
            "Fuse the providers' exports into the consumer's imports, offline: one "
            "component, one plugin, one sandbox. Uses wac when installed, else "
            "`wasm-tools compose`; without either, says what to install. At run time the "
            "host can link separately loaded plugins instead (plugins = [...] in the "
            "consumer's manifest)."
        ),
    )
    p.add_argument("consumer", help="the component whose imports are satisfied")
    p.add_argument("providers", nargs="+", help="components exporting what it imports")
    p.add_argument("-o", "--output", required=True, help="where to write the fused component")
    p.set_defaults(func=_cmd_compose)
