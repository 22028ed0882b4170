"""Build the textpipe-reverse component pack: the component, then the wheel.

    python sample_apps/textpipe_pack/build_pack.py [DEST_DIR]

1. builds ``guest/`` (WAT) against textpipe's contract WIT with airssys-plugins' builder;
2. copies the pack into a staging directory and puts ``reverse.wasm`` beside its manifest;
3. runs ``pip wheel`` there (offline when flit_core is installed) and leaves the wheel in
   DEST_DIR.

The source tree is never written to. Install the wheel with ``pip install DEST_DIR/*.whl``.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from airssys_plugins.authoring.build import build_guest

PACK = Path(__file__).resolve().parent
CONTRACT_WIT = PACK.parent.parent / "hookspecs" / "textpipe.wit"


def build_component() -> Path:
    """The ``reverse`` component (cached by content hash)."""
    return build_guest(PACK / "guest", wit_files=[CONTRACT_WIT])


def build_wheel(dest: str | Path) -> Path:
    """Build the pack's wheel into ``dest`` and return its path."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    component = build_component()
    with tempfile.TemporaryDirectory(prefix="textpipe-pack-") as tmp:
        staging = Path(tmp) / "pack"
        shutil.copytree(
            PACK, staging, ignore=shutil.ignore_patterns("guest", "__pycache__", "*.wasm")
        )
        shutil.copy(component, staging / "textpipe_reverse" / "reverse" / "reverse.wasm")
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dest)]
        if importlib.util.find_spec("flit_core") is not None:
            # The build backend is installed: build offline, without an isolated env.
            cmd += ["--no-build-isolation", "--no-index"]
        proc = subprocess.run([*cmd, str(staging)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"pip wheel failed:\n{proc.stdout}\n{proc.stderr}")
    wheels = sorted(dest.glob("textpipe_reverse-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip wheel left no textpipe_reverse wheel in {dest}")
    return wheels[-1]


if __name__ == "__main__":
    print(build_wheel(sys.argv[1] if len(sys.argv) > 1 else "dist"))
