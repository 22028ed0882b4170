"""``airssys-plugins new``: a plugin project, ready to build, for one language.

A project is a directory::

    wit/contract.wit                the host's contract; world `guest` exports the hooks
    wit/deps/airssys-host/host.wit  the host interfaces it may import (log, kv, ...)
    <sources>                       plugin.py + app.py | app.js | guest.c + bindings.* | guest.wat
    plugin.toml                     the manifest (`build` adds the component's sha256)
    README.md                       how to build, check and extend it
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final, Literal

from .. import _attrs as attrs
from ..contract import wit as _wit
from ..contract.mapping import Contract
from ..discovery.manifest import _NAME_RE, Manifest
from ..policy.capabilities import HOST_INTERFACES, HOST_PACKAGE, HOST_VERSION
from . import lang_c as _c
from . import lang_js as _js
from . import lang_python as _python
from . import lang_wat as _wat
from .common import ScaffoldError

__all__ = ["LANGUAGES", "Language", "NewPlugin", "new_plugin"]

Language = Literal["python", "js", "c", "wat"]
LANGUAGES: Final[tuple[Language, ...]] = ("python", "js", "c", "wat")

_DISPLAY: Final = {"python": "Python", "js": "JavaScript", "c": "C", "wat": "WAT"}
_SOURCES: Final = {
    "python": "`plugin.py`: your hooks, one plain function each (edit this)\n"
    "- `app.py`: generated glue for componentize-py (do not edit)",
    "js": "`app.js`: your hooks, one exported object per WIT interface (edit this)",
    "c": "`guest.c`: your hooks, one C function each (edit this)\n"
    "- `bindings.h`, `bindings.c`: generated types and canonical-ABI glue (do not edit)",
    "wat": "`guest.wat`: a core module with one exported function per hook (edit this)",
}
_TOOLCHAIN: Final = {
    "python": "componentize-py: `pip install 'airssys-plugins[build]'`. A build takes about "
    "10 s and makes a component of about 18 MB (CPython inside).",
    "js": "Node.js 18 or later with npm (Debian: `apt-get install nodejs npm`). The first "
    "build installs jco and componentize-js with npm into airssys-plugins' cache directory "
    "(about 20 s, once). A build takes about 2 s; the component is about 1.6 MB.",
    "c": "clang with the wasm32 target and its linker (Debian: `apt-get install clang lld`), "
    "and wasm-tools: `pip install 'airssys-plugins[build]'`. A build takes well under a "
    "second; the component is a few KB.",
    "wat": "wasm-tools: `pip install 'airssys-plugins[build]'`. A build takes milliseconds; "
    "the component is a few KB.",
}


@attrs.frozen
class NewPlugin:
    """What :func:`new_plugin` made."""

    directory: Path
    files: tuple[Path, ...]
    hooks: tuple[str, ...]
    #: Hooks bound to another WIT package (``wit_binding``), left out of the project.
    skipped: tuple[str, ...] = ()


def choose_hooks(contract: Contract, hooks: Iterable[str] | None) -> tuple[list[str], list[str]]:
    """The hooks a new project exports (all generated ones by default), and those skipped."""
    generated = [n for n, h in sorted(contract.hooks.items()) if contract.is_generated(h)]
    bound = [n for n in sorted(contract.hooks) if n not in generated]
    if hooks is None:
        if not generated:
            raise ScaffoldError(
                "every hook of this contract is bound to another WIT package; build against "
                "that package's own WIT instead"
            )
        return generated, bound
    chosen = list(dict.fromkeys(hooks))
    unknown = [h for h in chosen if h not in contract.hooks]
    if unknown or not chosen:
        raise ScaffoldError(
            f"unknown hook(s) {unknown}; the contract's hooks are {sorted(contract.hooks)}"
        )
    for h in chosen:
        if h in bound:
            raise ScaffoldError(
                f"hook {h!r} is bound to {contract.hooks[h].binding}, a function of another "
                "WIT package; build a component against that package's WIT instead",
                hook=h,
            )
    return chosen, []


def new_plugin(
    name: str,
    *,
    lang: Language,
    contract: Contract,
    host_wit: Mapping[str, str],
    directory: str | os.PathLike[str],
    hooks: Iterable[str] | None = None,
    contract_spec: str | None = None,
    uses: Iterable[str] = (),
) -> NewPlugin:
    """Create a plugin project for ``hooks`` (default: all) of ``contract`` in ``directory``.

    ``host_wit`` is :meth:`PluginHost.host_wit` (one WIT document per package), copied
    under ``wit/deps``. ``contract_spec`` (``MODULE:OBJECT``) only appears in the README's
    commands. Every file is generated before any is written: on error nothing is created.
    """
    if not _NAME_RE.match(name):
        raise ScaffoldError(
            f"{name!r} is not a plugin name: use 1-64 letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )
    if lang not in LANGUAGES:
        raise ScaffoldError(f"unknown language {lang!r}; choose one of {', '.join(LANGUAGES)}")
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ScaffoldError(
            f"{target} already exists and is not an empty directory; choose another --dir "
            "or remove it"
        )
    chosen, skipped = choose_hooks(contract, hooks)
    used = sorted(set(uses))
    unknown = [u for u in used if u not in HOST_INTERFACES]
    if unknown:
        raise ScaffoldError(
            f"unknown host interface(s) {unknown}; choose from {sorted(HOST_INTERFACES)}"
        )
    world = contract.wit(world="guest", hooks=chosen)
    if used:  # import the host interfaces the plugin uses into its world
        imports = "".join(f"  import {HOST_PACKAGE}/{u}@{HOST_VERSION};\n" for u in used)
        world = world.replace("world guest {\n", "world guest {\n" + imports, 1)
    files: dict[str, str] = {"wit/contract.wit": world}
    for package, text in host_wit.items():
        pkg = _wit.PackageId.parse(package)
        if (pkg.namespace, pkg.name) == (contract.package.namespace, contract.package.name):
            files["wit/host.wit"] = text  # the app's own host functions share its package
        else:
            files[f"wit/deps/{pkg.namespace}-{pkg.name}/{_dep_file(pkg)}"] = text
    if lang == "python":
        files.update(_python.python_files(contract, chosen, plugin=name))
        files["host.py"] = _GUEST_HOST_PY
    elif lang == "js":
        files.update(_js.js_files(contract, chosen, plugin=name))
    elif lang == "c":
        files.update(_c.c_files(contract, chosen))
    else:
        files["guest.wat"] = _wat.wat_module(contract, chosen, plugin=name)
    files["plugin.toml"] = _manifest(name, lang, contract, used)
    Manifest.from_toml(files["plugin.toml"], path=target / "plugin.toml")  # must be valid
    files["README.md"] = _readme(name, lang, contract, chosen, skipped, target, contract_spec)
    written = []
    for rel, text in files.items():
        path = target / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return NewPlugin(target, tuple(written), tuple(chosen), tuple(skipped))


_GUEST_HOST_PY: Final = (
    importlib.resources.files("airssys_plugins.authoring")
    .joinpath("guest_host.py.txt")
    .read_text(encoding="utf-8")
)


def _dep_file(pkg: _wit.PackageId) -> str:
    return "host.wit" if pkg.namespace == "airssys" else f"{pkg.name}.wit"


def _version_range(contract: Contract) -> str | None:
    version = contract.package.version
    if version is None:
        return None
    major, minor = version.split(".")[:2]
    return f"^{major}.{minor}"


def _manifest(name: str, lang: Language, contract: Contract, uses: list[str]) -> str:
    pkg = contract.package
    version = _version_range(contract)
    contract_lines = f'package = "{pkg.namespace}:{pkg.name}"\n'
    if version is not None:
        contract_lines += f'version = "{version}"\n'
    return (
        f"# The manifest of plugin {name} (docs: reference/manifest.md of airssys-plugins).\n"
        f'name = "{name}"\n'
        'version = "0.1.0"\n'
        f'description = "A {_DISPLAY[lang]} plugin for {pkg}."\n'
        "# `airssys-plugins build` builds the component and records its sha256 after it.\n"
        f'component = "{name}.wasm"\n'
        "\n[contract]\n"
        f"{contract_lines}"
        "\n# What the plugin asks the host for; it gets only what the host grants. To call a\n"
        "# host interface, also import it in the world (see README.md).\n"
        + (
            "[capabilities]\ninterfaces = [" + ", ".join(f'"{u}"' for u in uses) + "]\n"
            if uses
            else '# [capabilities]\n# interfaces = ["log", "config", "kv", "http"]\n'
        )
    )


def _readme(
    name: str,
    lang: Language,
    contract: Contract,
    hooks: list[str],
    skipped: list[str],
    target: Path,
    contract_spec: str | None,
) -> str:
    shown_dir = target.name or str(target)
    validate = (
        f"airssys-plugins validate {shown_dir} --contract {contract_spec} "
        f"--package {contract.package}"
        if contract_spec
        else f"airssys-plugins validate {shown_dir} --contract MODULE:OBJECT"
    )
    hook_list = "".join(f"- `{h}`: `{contract.hooks[h].signature.render()}`\n" for h in hooks)
    skipped_note = (
        "\nHooks bound to other WIT packages are not part of this project: "
        + ", ".join(f"`{h}` ({contract.hooks[h].binding})" for h in skipped)
        + ".\n"
        if skipped
        else ""
    )
    types_note = ""
    if lang in ("c", "wat"):
        supported = _c.SUPPORTED_TYPES if lang == "c" else _wat.SUPPORTED_TYPES
        types_note = (
            "\n## WIT types\n\n"
            f"The {_DISPLAY[lang]} skeleton generator supports {supported}. "
            "`airssys-plugins new` refuses a hook with any other type and says which.\n"
        )
    return _README.format(
        name=name,
        lang=_DISPLAY[lang],
        package=contract.package,
        hooks=hook_list,
        skipped=skipped_note,
        sources=_SOURCES[lang],
        toolchain=_TOOLCHAIN[lang],
        dir=shown_dir,
        validate=validate,
        types=types_note,
        language_notes=_LANGUAGE_NOTES[lang],
    )


_README: Final = """\
# {name}

A {lang} plugin for `{package}`, made by `airssys-plugins new`. It implements these hooks:

{hooks}{skipped}
Each hook's stub returns the zero value of its result type (an empty string, 0, none...)
until you fill it in.

## Build

```console
$ airssys-plugins build {dir}
```

This builds `{name}.wasm` beside `plugin.toml` and writes its sha256 into `plugin.toml`.
Builds are cached by content hash: an unchanged project is not rebuilt.

Toolchain: {toolchain}

## Check it against the host

```console
$ {validate}
```

Put the directory (or just `plugin.toml` and `{name}.wasm`) in one of the host
application's plugin directories to use it.

## Files

- {sources}
- `wit/contract.wit`: the host's contract, generated from its hookspecs. World `guest`
  exports the hooks this plugin implements; remove an `export` line to drop a hook.
- `wit/deps/airssys-host/host.wit`: the host interfaces a plugin may import (`log`,
  `config`, `kv`, `http`) and the optional `lifecycle` exports (`init`, `health`,
  `shutdown`).
- `plugin.toml`: the manifest: name, version, the contract it targets, what it asks for.
{types}
## Calling the host

To log (or use `config`, `kv`, `http`): add `import airssys:host/log@0.1.0;` inside
`world guest` in `wit/contract.wit`, and ask for it in `plugin.toml`:

```toml
[capabilities]
interfaces = ["log"]
```

The host links an interface only if it grants it. {language_notes}
"""

_LANGUAGE_NOTES: Final = {
    "python": "In Python the import is then a module: "
    "`from wit_world.imports import log` and "
    '`log.log(log.Level.INFO, "hello", [])`. To browse every generated class, run '
    "`componentize-py -d wit -w guest bindings ../bindings` (outside the project, so the "
    "build does not pack it).",
    "js": "In JavaScript the import is then an ES module: "
    '`import * as log from "airssys:host/log@0.1.0";` and '
    '`log.log("info", "hello", []);`.',
    "c": "In C declare the import by hand with "
    '`__attribute__((import_module("airssys:host/log@0.1.0"), import_name("log")))` and '
    "its flattened canonical-ABI signature.",
    "wat": 'In WAT add `(import "airssys:host/log@0.1.0" "log" (func ...))` with the '
    "flattened canonical-ABI signature.",
}
