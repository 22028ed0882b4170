"""Instructions a new process spends importing the package and creating a host, counted
by valgrind: a measure that does not move with the machine's load.

Run from the repository root (needs valgrind: ``apt-get install valgrind``)::

    python bench/bench_instructions.py                        # the work tree, about 30 s
    python bench/bench_instructions.py --tree /path/to/other  # ... against another checkout
                                                              # (e.g. a git worktree)

CPU time of a 100-250 ms process moves by 30 % and more on a shared machine, more than most
changes to the package's imports are worth; the count of instructions a process runs
(``valgrind --tool=cachegrind``, ``PYTHONHASHSEED=0``) moves by under 0.3 % from run to
run. Each stage is one ``python -c`` run, and each runs twice: as is, and ending in
``os._exit(0)``, which skips the interpreter's teardown (its last garbage collections and
the freeing of every module, class and function). Their difference is the teardown's
share, which grows with the objects a stage leaves behind.

* floor: ``import pluggy``, the kitchen hookspecs (tests/kitchen_hooks.py, with attrs),
  ``import wasmtime, wasmtime.component`` and ``add_hookspecs``: what the application pays
  in that process whatever host it uses;
* import: the floor, then ``from airssys_plugins import PluginHost``;
* PluginHost(): the import, then ``PluginHost(pm, package=...)``.

Loads and calls are not counted: valgrind's virtual CPU lacks features the compiled code
was compiled for (wasmtime refuses it), and a component compiled under valgrind would not
be the one a real process maps. ``bench_startup.py`` and ``bench_loads.py`` time those.
Valgrind runs about 40x slower than the process itself.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchlib import REPO, Report, machine_info

_FLOOR = """
import sys
sys.path.insert(0, {tests!r})
import pluggy
from kitchen_hooks import KitchenHooks, PACKAGE
import wasmtime, wasmtime.component
pm = pluggy.PluginManager("kitchen")
pm.add_hookspecs(KitchenHooks)
"""
_IMPORT = "from airssys_plugins import PluginHost\n"
_HOST = "host = PluginHost(pm, package=PACKAGE)\n"
_EXIT = "import os\nos._exit(0)\n"
#: Where the children run: not the repository, whose directory ``python -c`` would put
#: before ``PYTHONPATH`` (so another tree's package would not be the one imported).
_CWD = tempfile.gettempdir()
STAGES = {"floor": _FLOOR, "import": _FLOOR + _IMPORT, "PluginHost()": _FLOOR + _IMPORT + _HOST}


def _env(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONPATH"] = str(tree)
    return env


def instructions(code: str, tree: Path) -> float:
    """Millions of instructions ``python -c code`` runs (cachegrind's ``I refs``)."""
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         sys.executable, "-c", code],
        capture_output=True, text=True, env=_env(tree), cwd=_CWD, check=False,
    )  # fmt: skip
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode != 0 or found is None:
        raise RuntimeError(f"valgrind run failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return int(found.group(1).replace(",", "")) / 1e6


def warm(tree: Path) -> None:
    """Write the tree's bytecode (an installed package has its .pyc files) and fill the
    caches its imports read, natively, before anything is counted."""
    env = _env(tree)
    subprocess.run([sys.executable, "-c", STAGES["PluginHost()"].format(tests=str(REPO / "tests"))],
                   env=env, cwd=_CWD, check=True)  # fmt: skip
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "airssys_plugins")],
                   env=env, check=True)  # fmt: skip


def count(tree: Path) -> dict[str, float]:
    """Every stage of ``tree``, as is and without the teardown (two valgrind runs at once)."""
    codes = {}
    for name, stage in STAGES.items():
        code = stage.format(tests=str(REPO / "tests"))
        codes[name] = code
        codes[name + " no-exit"] = code + _EXIT
    with ThreadPoolExecutor(2) as pool:
        futures = {name: pool.submit(instructions, code, tree) for name, code in codes.items()}
        return {name: f.result() for name, f in futures.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--tree", action="append", type=Path, default=[],
                    help="another checkout to count too (its airssys_plugins/ first on "
                    "PYTHONPATH); repeat for more")  # fmt: skip
    ap.add_argument("--json", metavar="PATH", help="write the counts here")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("bench_instructions.py needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    trees = [REPO, *(t.resolve() for t in args.tree)]
    print("\nairssys-plugins instruction counts (bench/bench_instructions.py)")
    for line in machine_info():
        print("  " + line)
    report = Report("bench_instructions")
    print(
        "\nmillions of instructions (valgrind, PYTHONHASHSEED=0); teardown = the interpreter's"
        " exit after the stage\n"
        f"  {'tree':<36} {'floor':>8} {'import':>8} {'teardown':>9} {'PluginHost()':>13}"
        f" {'teardown':>9} {'import+host':>12}"
    )
    for i, tree in enumerate(trees):
        warm(tree)
        c = count(tree)
        floor_exit = c["floor"] - c["floor no-exit"]
        imp = c["import"] - c["floor"]
        imp_exit = (c["import"] - c["import no-exit"]) - floor_exit
        host = c["PluginHost()"] - c["import"]
        host_exit = (c["PluginHost()"] - c["PluginHost() no-exit"]) - (
            c["import"] - c["import no-exit"]
        )
        both = c["PluginHost()"] - c["floor"]
        label = "work tree" if i == 0 else str(tree)
        print(
            f"  {label[-36:]:<36} {c['floor']:>8.1f} {imp:>8.1f} {imp_exit:>9.1f} {host:>13.1f}"
            f" {host_exit:>9.1f} {both:>12.1f}"
        )
        prefix = "" if i == 0 else f"tree{i} "
        report.values[f"{prefix}floor Mi"] = c["floor"]
        report.values[f"{prefix}floor teardown Mi"] = floor_exit
        report.values[f"{prefix}import Mi"] = imp
        report.values[f"{prefix}import teardown Mi"] = imp_exit
        report.values[f"{prefix}PluginHost() Mi"] = host
        report.values[f"{prefix}PluginHost() teardown Mi"] = host_exit
        report.values[f"{prefix}import+host Mi"] = both
    print(
        "  import and PluginHost(): beyond the stage before, teardown included; teardown: the"
        " part of it\n  spent after the last line (os._exit(0) skips it)"
    )
    report.write(args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
