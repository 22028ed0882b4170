"""componentize-py guest for tests/test_raw_imports.py: hands its argument to the host."""

from wit_world import exports
from wit_world.imports import host


class Relay(exports.Relay):
    def send(self, data: bytes) -> int:
        return host.take(data)

    def send_text(self, text: str) -> int:
        return host.take_text(text)
