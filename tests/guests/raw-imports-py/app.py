"""componentize-py guest for tests/test_raw_imports.py: hands its argument to the host
(give-back, give-blob-back: what a host function returned)."""

from wit_world import exports
from wit_world.imports import host


class Relay(exports.Relay):
    def send(self, data: bytes) -> int:
        return host.take(data)

    def send_text(self, text: str) -> int:
        return host.take_text(text)

    def give_back(self, n: int) -> int:
        return host.take(host.give(n))

    def give_blob_back(self, n: int) -> int:
        blob = host.give_blob(n)
        return host.take_text(blob.name) + host.take(blob.data)
