"""Probe guest for the sandbox tests: each export tries one thing a plugin may or may not
be allowed to do, and reports the outcome instead of crashing (except quit).

Build: componentize-py -d wit -w guest componentize app -o probe.wasm
"""

import os
import socket
import sys

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import config, http, kv, log


def _err(exc: BaseException) -> Err:
    return Err(f"{type(exc).__name__}: {exc}")


class ReadFile(exports.ReadFile):
    def read_file(self, path: str) -> str:
        try:
            with open(path) as f:
                return f.read()
        except Exception as exc:
            raise _err(exc) from None


class WriteFile(exports.WriteFile):
    def write_file(self, path: str, data: str) -> None:
        try:
            with open(path, "w") as f:
                f.write(data)
        except Exception as exc:
            raise _err(exc) from None


class ListDir(exports.ListDir):
    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(os.listdir(path))
        except Exception as exc:
            raise _err(exc) from None


class GetEnv(exports.GetEnv):
    def get_env(self, name: str) -> str | None:
        return os.environ.get(name)


class AllEnv(exports.AllEnv):
    def all_env(self) -> list[str]:
        return [f"{k}={v}" for k, v in os.environ.items()]


class OpenSocket(exports.OpenSocket):
    def open_socket(self, host: str, port: int) -> None:
        try:
            with socket.create_connection((host, port), timeout=1):
                pass
        except Exception as exc:
            raise _err(exc) from None


class Resolve(exports.Resolve):
    def resolve(self, host: str) -> list[str]:
        try:
            return sorted({info[4][0] for info in socket.getaddrinfo(host, 80)})
        except Exception as exc:
            raise _err(exc) from None


class Quit(exports.Quit):
    def quit(self, code: int) -> None:
        sys.exit(code)


class Flood(exports.Flood):
    def flood(self, lines: int, text: str) -> int:
        for i in range(lines):
            print(f"{i} {text}")
        sys.stdout.flush()
        return lines


class LogIt(exports.LogIt):
    def log_it(self, message: str) -> None:
        log.log(log.Level.WARNING, message, [log.Field("source", "probe")])


class ConfigGet(exports.ConfigGet):
    def config_get(self, key: str) -> str | None:
        return config.get(key)


class KvPut(exports.KvPut):
    def kv_put(self, key: str, value: str) -> None:
        kv.set(key, value.encode())


class KvFetch(exports.KvFetch):
    def kv_fetch(self, key: str) -> str | None:
        value = kv.get(key)
        return None if value is None else value.decode()


class HttpGet(exports.HttpGet):
    def http_get(self, url: str) -> str:
        response = http.fetch(http.Request("GET", url, [], b""))
        return f"{response.status} {response.body.decode()}"
