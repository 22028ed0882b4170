"""componentize-py guest for tests/test_raw_params.py: hands its argument to the host
(its records as the host interface's classes, the response back as its own)."""

from wit_world import exports
from wit_world.exports import relay
from wit_world.imports import host


class Relay(exports.Relay):
    def relay(self, req: relay.Request) -> relay.Response:
        headers = [host.Header(h.name, h.value) for h in req.headers]
        got = host.fetch(host.Request(req.method, req.url, headers, req.body))
        back = [relay.Header(h.name, h.value) for h in got.headers]
        return relay.Response(got.status, back, got.body)

    def tags_back(self) -> int:
        return host.tags(["naïve", "ïve", "✓"])
