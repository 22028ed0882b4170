"""lookup: a componentize-py guest for `eventrouter:hooks@1.0.0` (hook `enrich`).

For an event with a subject (the user it is about), it asks a directory service over
HTTP, `GET <directory-url>/users/<subject>`, and adds the user's `team` and `name`.
Answers are cached in the host's kv store for `cache-seconds` (default 300), so a busy
subject costs one request. The directory's URL comes from the plugin's config
(`directory-url`); the host lets the plugin reach that origin and no other. Enrichment
is best effort: a refused or failed request adds no fields and logs why; a subject the
directory does not know gets `team=unknown`.

Imports (see `wit/guest.wit`): `airssys:host/http`, `airssys:host/kv`,
`airssys:host/config`, `airssys:host/log`.

Build (from this directory, with the contract WIT copied into wit/):
`componentize-py -d wit/ -w guest componentize app -o lookup.wasm`
"""

from __future__ import annotations

import json
import time
import urllib.parse

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.enrich import Event, Field
from wit_world.imports import config, http, kv, log

_UNKNOWN = {"team": "unknown"}


def _warn(message: str, event: Event, detail: str) -> None:
    log.log(log.Level.WARNING, message, [log.Field("id", event.id), log.Field("detail", detail)])


def _cached(subject: str) -> dict[str, str] | None:
    entry = kv.get(f"user/{subject}")
    if entry is None:
        return None
    cached = json.loads(entry)
    max_age = float(config.get("cache-seconds") or "300")
    return cached["user"] if time.time() - cached["at"] < max_age else None


def _remember(subject: str, user: dict[str, str]) -> None:
    entry = json.dumps({"at": time.time(), "user": user}).encode()
    try:
        kv.set(f"user/{subject}", entry)
    except Err as exc:  # the store is full: carry on uncached
        log.log(log.Level.WARNING, "cannot cache", [log.Field("detail", str(exc.value))])


def _fetch(base: str, event: Event, subject: str) -> dict[str, str] | None:
    url = f"{base.rstrip('/')}/users/{urllib.parse.quote(subject, safe='')}"
    try:
        response = http.fetch(http.Request("GET", url, [], b""))
    except Err as exc:  # refused by the host, or the request failed
        _warn("directory lookup failed", event, str(exc.value))
        return None
    if response.status == 404:
        return _UNKNOWN
    if response.status != 200:
        _warn("directory lookup failed", event, f"HTTP {response.status}")
        return None
    try:
        found = json.loads(response.body)
    except ValueError as exc:
        _warn("directory sent invalid JSON", event, str(exc))
        return None
    return {key: str(found[key]) for key in ("team", "name") if key in found}


class Enrich(exports.Enrich):
    def enrich(self, event: Event) -> list[Field]:
        base = config.get("directory-url")
        if event.subject is None or base is None:
            return []
        user = _cached(event.subject)
        if user is None:
            user = _fetch(base, event, event.subject)
            if user is None:
                return []
            _remember(event.subject, user)
        return [Field(key, value) for key, value in user.items()]
