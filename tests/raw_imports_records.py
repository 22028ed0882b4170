"""The records the raw-imports guests' host functions take and return
(tests/guests/raw-imports*/wit: ``blob``, ``header``, ``request``, ``response``), shared by
tests/test_raw_imports.py and bench/bench_host_bytes.py."""

from __future__ import annotations

import dataclasses

from airssys_plugins.contract.annotations import u16


@dataclasses.dataclass
class Blob:
    name: str
    data: bytes


@dataclasses.dataclass
class Header:
    name: str
    value: str


@dataclasses.dataclass
class Request:
    method: str
    url: str
    headers: list[Header]
    body: bytes


@dataclasses.dataclass
class Response:
    status: u16
    headers: list[Header]
    body: bytes
