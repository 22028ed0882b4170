"""Linker guest for the symlink tests: tries to create links in its writable preopen and
reports each outcome (the error text) instead of crashing.

Build: componentize-py -d wit -w guest componentize app -o linker.wasm
"""

import os

from componentize_py_types import Err
from wit_world import exports


def _err(exc: BaseException) -> Err:
    return Err(f"{type(exc).__name__}: {exc}")


class MakeSymlink(exports.MakeSymlink):
    def make_symlink(self, target: str, path: str) -> None:
        try:
            os.symlink(target, path)
        except Exception as exc:
            raise _err(exc) from None


class MakeHardlink(exports.MakeHardlink):
    def make_hardlink(self, source: str, path: str) -> None:
        try:
            os.link(source, path)
        except Exception as exc:
            raise _err(exc) from None


class ReadLink(exports.ReadLink):
    def read_link(self, path: str) -> str:
        try:
            return os.readlink(path)
        except Exception as exc:
            raise _err(exc) from None


class WriteFile(exports.WriteFile):
    def write_file(self, path: str, data: str) -> None:
        try:
            with open(path, "w") as f:
                f.write(data)
        except Exception as exc:
            raise _err(exc) from None


class ReadFile(exports.ReadFile):
    def read_file(self, path: str) -> str:
        try:
            with open(path) as f:
                return f.read()
        except Exception as exc:
            raise _err(exc) from None
