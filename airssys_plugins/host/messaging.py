"""Topics and mailboxes: plugins (and Python code) message each other, actor-style.

Every subscriber (a plugin exporting ``airssys:host/subscriber#on-message``, or a Python
callable given to :meth:`PluginHost.subscribe`) has a **mailbox**: a bounded queue served
by one worker thread, so its messages are handled one at a time, in arrival order (and so
in order per sender), and a plugin's instance is never entered while it is busy.

Publishing puts the message in the mailbox of every subscriber whose pattern matches the
topic. A full mailbox applies backpressure per :class:`MessagingPolicy`: ``block`` waits up
to ``block_timeout`` seconds for room, ``fail`` does not wait; either way a message that
finds no room is dead-lettered and the publisher gets :class:`MailboxFull`. A message no
subscriber matches is dead-lettered too (``no subscriber``): nothing is lost silently.

A handler that fails is retried ``retries`` times; a plugin handler that traps is
restarted by its supervisor first (a fresh instance; a crash loop backs off), and a plugin
whose circuit is open gets no deliveries: its messages are dead-lettered (``circuit
open``). The dead-letter queue keeps the last ``dead_letter_limit`` letters.

Topics are dot-separated words; subscriptions and grants are patterns where ``*`` matches
one word and a final ``>`` one or more (``orders.*``, ``events.>``). A plugin publishes
only to topics its ``publish`` grants cover and receives only what its ``subscribe``
grants cover.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Literal, final

from .. import _attrs as attrs
from .. import _log as logging
from .._errors import HookCallError, PluginError
from ..contract.annotations import Err, Ok, Result
from ..policy.audit import AuditLog
from ..policy.capabilities import topic_covers, topic_name, topic_pattern
from ..runtime import BoundFunc
from .interfaces import SUBSCRIBER_INTERFACE, PluginContext, subscriber_signature
from .loaded import LoadedPlugins
from .plugin import WasmPlugin
from .supervision import PluginUnavailable, Supervisor

if TYPE_CHECKING:
    # .status (socket, json) is imported by the first record_status, not by every host
    from .status import StatusFile, StatusWriter

__all__ = [
    "Counters",
    "DeadLetter",
    "MailboxFull",
    "Message",
    "Messaging",
    "MessagingError",
    "MessagingPolicy",
    "NoReply",
    "Subscription",
    "TopicDenied",
]

log = logging.getLogger("airssys_plugins.messaging")

WhenFull = Literal["block", "fail"]
#: The sender name of messages published by the host application (Python code).
HOST_SENDER: Final = "host"


class MessagingError(PluginError, RuntimeError):
    """A message could not be published, delivered or answered."""


class TopicDenied(MessagingError, PermissionError):
    """A plugin published to a topic its ``publish`` grants do not cover."""

    def __init__(self, plugin: str, topic: str, granted: Iterable[str]):
        shown = ", ".join(sorted(granted)) or "none"
        super().__init__(
            f"plugin {plugin!r} may not publish to topic {topic!r} (its publish grants: "
            f'{shown}); add a pattern covering it, e.g. publish = ["{topic}"], to its '
            f"manifest's [capabilities] and to [plugins.{plugin}] in the grants file",
            plugin=plugin,
        )
        self.topic = topic


class MailboxFull(MessagingError):
    """Mailboxes had no room for a message (which went to the dead-letter queue);
    ``subscribers`` names them."""

    def __init__(self, topic: str, subscribers: list[str], *, plugin: str | None):
        self.topic = topic
        self.subscribers = tuple(subscribers)
        super().__init__(
            f"message to topic {topic!r}: the mailbox of {', '.join(map(repr, subscribers))} "
            "is full; the message was dead-lettered. Slow down, or raise "
            "MessagingPolicy(mailbox_size=...)",
            plugin=plugin,
        )


class NoReply(MessagingError, TimeoutError):
    """A request got no reply: no subscriber, none answered, or the timeout passed."""


@final
@attrs.frozen
class MessagingPolicy:
    """How a host's mailboxes behave.

    ``mailbox_size`` messages wait per subscriber at most; when a mailbox is full,
    ``when_full="block"`` makes the publisher wait up to ``block_timeout`` seconds for
    room, ``"fail"`` does not wait (both then dead-letter the message and raise
    :class:`MailboxFull`). A failing handler is retried ``retries`` times before its
    message is dead-lettered. ``dead_letter_limit`` letters are kept (oldest dropped,
    each drop logged).
    """

    mailbox_size: int = attrs.field(default=1000, validator=attrs.validators.gt(0))
    when_full: WhenFull = attrs.field(
        default="block", validator=attrs.validators.in_(("block", "fail"))
    )
    block_timeout: float = attrs.field(default=1.0, validator=attrs.validators.ge(0))
    retries: int = attrs.field(default=1, validator=attrs.validators.ge(0))
    dead_letter_limit: int = attrs.field(default=10_000, validator=attrs.validators.gt(0))


@final
@attrs.frozen
class Message:
    """One message: ``topic``, ``payload``, who sent it (a plugin name or ``"host"``)."""

    topic: str
    payload: bytes
    sender: str
    id: int
    sent_at: float = attrs.field(factory=time.monotonic, repr=False)


@final
@attrs.frozen
class DeadLetter:
    """A message that was not handled: why (``no subscriber``, ``mailbox full``,
    ``handler failed``, ``circuit open``, ``unsubscribed``), for whom, after how many
    attempts, and the handler's last error."""

    message: Message
    subscriber: str | None
    reason: str
    error: str | None = None
    attempts: int = 0
    at: float = attrs.field(factory=time.time)


@final
@attrs.frozen
class Counters:
    """Counts of one topic or one subscriber: messages handled, handler retries,
    messages dead-lettered, and messages waiting in mailboxes now."""

    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    queue_depth: int = 0


@attrs.define
class _Count:
    delivered: int = 0
    retried: int = 0
    dead_lettered: int = 0
    queued: int = 0

    def frozen(self) -> Counters:
        return Counters(self.delivered, self.retried, self.dead_lettered, self.queued)


class _Pending:
    """A request waiting for the first reply from ``expected`` deliveries."""

    def __init__(self, expected: int):
        self.remaining = expected
        self.reply: bytes | None = None
        self.errors: list[str] = []
        self.done = threading.Event()
        self._lock = threading.Lock()

    def answer(self, reply: bytes | None, error: str | None = None) -> None:
        with self._lock:
            self.remaining -= 1
            if error is not None:
                self.errors.append(error)
            if reply is not None and self.reply is None:
                self.reply = reply
                self.done.set()
            elif self.remaining <= 0:
                self.done.set()


_Item = tuple[Message, "_Pending | None"]


class _Mailbox:
    """One subscriber's queue and the worker thread that serves it."""

    def __init__(
        self,
        bus: Messaging,
        name: str,
        patterns: tuple[str, ...],
        handler: Callable[[Message], bytes | None],
        plugin: str | None,
    ):
        import queue

        self.bus = bus
        self.name = name
        self.patterns = patterns
        self.handler = handler
        #: The plugin behind it (None: a Python subscriber).
        self.plugin = plugin
        self.queue: queue.Queue[_Item | None] = queue.Queue(bus.policy.mailbox_size)
        self.closed = False
        self.thread = threading.Thread(
            target=self._serve, name=f"airssys-mailbox-{name}", daemon=True
        )
        self.thread.start()

    def matches(self, topic: str) -> bool:
        return any(topic_covers(p, topic) for p in self.patterns)

    def offer(self, message: Message, pending: _Pending | None) -> bool:
        """Queue ``message`` (waiting per policy); False when there was no room."""
        import queue

        bus = self.bus
        bus._queued(self, message, +1)
        bus._busy(+1)
        try:
            if bus.policy.when_full == "block":
                self.queue.put((message, pending), timeout=bus.policy.block_timeout)
            else:
                self.queue.put_nowait((message, pending))
        except queue.Full:
            bus._queued(self, message, -1)
            bus._dead_letter(message, self.name, "mailbox full")
            bus._busy(-1)
            if pending is not None:
                pending.answer(None, f"{self.name}: mailbox full")
            return False
        return True

    def _serve(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            message, pending = item
            self.bus._queued(self, message, -1)
            try:
                if self.closed:
                    self.bus._dead_letter(message, self.name, "unsubscribed")
                    if pending is not None:
                        pending.answer(None, f"{self.name}: unsubscribed")
                    continue
                self._handle(message, pending)
            finally:
                self.bus._busy(-1)

    def _handle(self, message: Message, pending: _Pending | None) -> None:
        bus = self.bus
        attempts = 0
        while True:
            supervisor = bus._supervisor(self.plugin)
            if supervisor is not None and supervisor.open:
                bus._dead_letter(
                    message, self.name, "circuit open", supervisor.last_error, attempts
                )
                if pending is not None:
                    pending.answer(None, f"{self.name}: circuit open")
                return
            if supervisor is not None and supervisor.retry_at is not None:
                wait = supervisor.retry_at - time.monotonic()
                if wait > 0:  # the plugin is backing off: its mailbox waits with it
                    time.sleep(min(wait, supervisor.policy.backoff_max))
            attempts += 1
            try:
                reply = self.handler(message)
            except Exception as exc:  # every failure is retried or dead-lettered
                error = f"{type(exc).__name__}: {exc}"
                if attempts <= bus.policy.retries:
                    bus._count(self, message, "retried")
                    log.info("%s: retrying message %d (%s)", self.name, message.id, error)
                    continue
                bus._dead_letter(message, self.name, "handler failed", error, attempts)
                if pending is not None:
                    pending.answer(None, f"{self.name}: {error}")
                return
            bus._count(self, message, "delivered")
            if pending is not None:
                pending.answer(reply)
            return

    def close(self) -> None:
        """Stop serving: messages still queued are dead-lettered (``unsubscribed``)."""
        import queue

        self.closed = True
        try:
            self.queue.put(None, timeout=self.bus.policy.block_timeout + 1.0)
        except queue.Full:  # a handler is stuck: its worker dead-letters the rest when it returns
            log.warning("mailbox %s: closed while its handler is still busy", self.name)


@final
class Subscription:
    """A Python subscriber's mailbox; :meth:`cancel` ends it."""

    def __init__(self, bus: Messaging, name: str):
        self._bus = bus
        self.name = name

    def cancel(self) -> None:
        self._bus.unsubscribe(self.name)

    def __repr__(self) -> str:
        return f"<Subscription {self.name!r}>"


@final
class Messaging:
    """A host's topics, mailboxes, dead letters and counters."""

    def __init__(self, plugins: LoadedPlugins, *, policy: MessagingPolicy, audit: AuditLog):
        self.policy = policy
        self._plugins = plugins
        self._audit = audit
        self._mailboxes: dict[str, _Mailbox] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._names = itertools.count(1)
        self._topics: dict[str, _Count] = {}
        self._subscribers: dict[str, _Count] = {}
        self._dead: deque[DeadLetter] = deque(maxlen=policy.dead_letter_limit)
        #: id(plugin version) -> (that version, its bound on-message): see prepare().
        self._bound: dict[int, tuple[WasmPlugin, BoundFunc]] = {}
        #: Messages queued or being handled, and a condition to wait for none (drain()).
        self._in_flight = 0
        self._idle = threading.Condition(threading.Lock())
        self._status: StatusWriter | None = None
        self._remember: Callable[[bool], None] = lambda loaded: None

    # -- subscribing ------------------------------------------------------------------------

    def subscribe(
        self, pattern: str, handler: Callable[[str, bytes], bytes | None]
    ) -> Subscription:
        """A Python subscriber: ``handler(topic, payload)`` runs on its mailbox's worker
        thread; a ``bytes`` return answers a request."""
        try:
            topic_pattern(pattern)
        except ValueError as exc:
            raise MessagingError(f"subscribe: {exc}") from None
        label = getattr(handler, "__qualname__", type(handler).__name__)
        name = f"python:{label}#{next(self._names)}"

        def run(message: Message) -> bytes | None:
            return handler(message.topic, message.payload)

        with self._lock:
            self._mailboxes[name] = _Mailbox(self, name, (pattern,), run, None)
        return Subscription(self, name)

    def unsubscribe(self, name: str) -> None:
        with self._lock:
            mailbox = self._mailboxes.pop(name, None)
        if mailbox is not None:
            mailbox.close()

    def prepare(self, plugin: WasmPlugin) -> None:
        """Bind ``plugin``'s on-message (a version being loaded, not serving yet).

        On the loading thread: binding reads the compiled component, which must not
        happen on a mailbox thread while another thread loads a new version of it."""
        found = plugin.image.find_export(SUBSCRIBER_INTERFACE, "on-message")
        if found is None:
            return
        bound = plugin.instances[0].bind(
            "on-message", found[0], "on-message", subscriber_signature()
        )
        current = self._plugins.get(plugin.name)
        kept = {k: v for k, v in self._bound.items() if v[0] is current or v[0].name != plugin.name}
        kept[id(plugin)] = (plugin, bound)
        self._bound = kept  # replaced whole: mailbox threads never see a half-built dict

    def attach(self, plugin: WasmPlugin) -> None:
        """Subscribe a loaded (or reloaded) plugin to its granted ``subscribe`` patterns;
        a reload keeps its mailbox and the messages waiting in it."""
        self._remember(True)
        patterns = tuple(sorted(plugin.capabilities.subscribe))
        if not patterns or plugin.image.find_export(SUBSCRIBER_INTERFACE, "on-message") is None:
            self._drop(plugin.name)
            return
        with self._lock:
            mailbox = self._mailboxes.get(plugin.name)
            if mailbox is not None:
                mailbox.patterns = patterns
                return
            name = plugin.name
            self._mailboxes[name] = _Mailbox(self, name, patterns, self._plugin_handler(name), name)
        for pattern in patterns:
            self._audit.record("grant", name, f"subscribed to {pattern}", topic=pattern)
        self._changed()

    def detach(self, name: str) -> None:
        """Plugin ``name`` was unloaded: its mailbox closes (waiting messages are
        dead-lettered)."""
        self._remember(False)
        self._drop(name)

    def _drop(self, name: str) -> None:
        # rebuilt only when it holds a version of the plugin: a load or unload of a plugin
        # that subscribes to nothing costs no walk of every subscriber's binding
        if any(v[0].name == name for v in self._bound.values()):
            self._bound = {k: v for k, v in self._bound.items() if v[0].name != name}
        if name in self._mailboxes:  # (no lock taken for a plugin without a mailbox)
            self.unsubscribe(name)
        self._changed()

    def _plugin_handler(self, name: str) -> Callable[[Message], bytes | None]:
        def handle(message: Message) -> bytes | None:
            plugin = self._plugins.get(name)
            if plugin is None:
                raise MessagingError(f"plugin {name!r} is not loaded", plugin=name)
            cached = self._bound.get(id(plugin))
            if cached is None or cached[0] is not plugin:  # a version without on-message
                raise MessagingError(
                    f"plugin {name!r} (this version) exports no {SUBSCRIBER_INTERFACE}#on-message",
                    plugin=name,
                )
            bound = cached[1]
            supervisor = plugin.supervisor
            if supervisor is not None and (supervisor.open or supervisor.retry_at is not None):
                supervisor.before_call("on-message")
            try:
                reply: bytes | None = plugin.call(bound, (message.topic, message.payload))
            except HookCallError as exc:
                if supervisor is not None and not isinstance(exc, PluginUnavailable):
                    supervisor.failure(exc)  # restarts it; a crash loop backs off, then opens
                raise
            if supervisor is not None and supervisor.consecutive:
                supervisor.success()
            return reply

        return handle

    # -- publishing -------------------------------------------------------------------------

    def _message(self, sender: str, topic: str, payload: bytes) -> Message:
        try:
            topic_name(topic)
        except ValueError as exc:
            raise MessagingError(
                f"{'plugin ' + repr(sender) if sender != HOST_SENDER else 'the host'}: {exc}",
                plugin=None if sender == HOST_SENDER else sender,
            ) from None
        return Message(topic, bytes(payload), sender, next(self._ids))

    def _check(self, context: PluginContext, topic: str) -> None:
        if not any(topic_covers(p, topic) for p in context.publish):
            if context.audit is not None:
                context.audit.record(
                    "deny", context.name, f"publish to {topic!r} refused", topic=topic
                )
            raise TopicDenied(context.name, topic, context.publish)

    def publish(self, topic: str, payload: bytes, *, sender: str = HOST_SENDER) -> int:
        """Queue ``payload`` for every subscriber of ``topic``; returns how many mailboxes
        took it (0: dead-lettered as ``no subscriber``). Raises :class:`MailboxFull` when
        some had no room."""
        message = self._message(sender, topic, payload)
        with self._lock:
            targets = [m for m in self._mailboxes.values() if m.matches(topic)]
        if not targets:
            self._dead_letter(message, None, "no subscriber")
            return 0
        full = [m.name for m in targets if not m.offer(message, None)]
        if full:
            raise MailboxFull(topic, full, plugin=None if sender == HOST_SENDER else sender)
        return len(targets)

    def publish_from(self, context: PluginContext, topic: str, payload: bytes) -> None:
        """``messaging.publish`` of a plugin: only to topics its grants cover."""
        self._check(context, topic)
        self.publish(topic, payload, sender=context.name)

    def _ask(self, sender: str, topic: str, payload: bytes, timeout: float) -> bytes:
        message = self._message(sender, topic, payload)
        with self._lock:
            # never the sender itself: its instance is busy waiting for the reply
            targets = [
                m for m in self._mailboxes.values() if m.matches(topic) and m.plugin != sender
            ]
        if not targets:
            self._dead_letter(message, None, "no subscriber")
            raise NoReply(f"request to topic {topic!r}: no subscriber", plugin=None)
        pending = _Pending(len(targets))
        for mailbox in targets:
            mailbox.offer(message, pending)
        if not pending.done.wait(timeout):
            raise NoReply(f"request to topic {topic!r}: no reply within {timeout:g} s")
        if pending.reply is None:
            why = "; ".join(pending.errors) or "no subscriber answered (all returned none)"
            raise NoReply(f"request to topic {topic!r}: no reply ({why})")
        return pending.reply

    def request(self, topic: str, payload: bytes, *, timeout: float = 1.0) -> bytes:
        """Send ``payload`` to the subscribers of ``topic`` and return the first reply;
        :class:`NoReply` when there is none within ``timeout`` seconds."""
        return self._ask(HOST_SENDER, topic, payload, timeout)

    def request_from(
        self, context: PluginContext, topic: str, payload: bytes, timeout: float
    ) -> Result[bytes, str]:
        """``messaging.request`` of a plugin: the reply, or an ``err`` saying why not."""
        self._check(context, topic)
        try:
            return Ok(self._ask(context.name, topic, payload, timeout))  # type: ignore[return-value]
        except MessagingError as exc:
            return Err(str(exc))  # type: ignore[return-value]

    # -- bookkeeping ------------------------------------------------------------------------

    def _supervisor(self, plugin: str | None) -> Supervisor | None:
        if plugin is None:
            return None
        found = self._plugins.get(plugin)
        return None if found is None else found.supervisor

    def _counts(self, mailbox: _Mailbox, message: Message) -> tuple[_Count, _Count]:
        topic = self._topics.get(message.topic)
        if topic is None:
            topic = self._topics.setdefault(message.topic, _Count())
        sub = self._subscribers.get(mailbox.name)
        if sub is None:
            sub = self._subscribers.setdefault(mailbox.name, _Count())
        return topic, sub

    def _queued(self, mailbox: _Mailbox, message: Message, delta: int) -> None:
        with self._lock:
            for count in self._counts(mailbox, message):
                count.queued += delta
        self._changed()

    def _count(self, mailbox: _Mailbox, message: Message, what: str) -> None:
        with self._lock:
            for count in self._counts(mailbox, message):
                setattr(count, what, getattr(count, what) + 1)
        self._changed()

    def _busy(self, delta: int) -> None:
        with self._idle:
            self._in_flight += delta
            if self._in_flight <= 0:
                self._idle.notify_all()

    def _changed(self) -> None:
        status = self._status
        if status is not None:
            status.changed()

    def _dead_letter(
        self,
        message: Message,
        subscriber: str | None,
        reason: str,
        error: str | None = None,
        attempts: int = 0,
    ) -> None:
        letter = DeadLetter(message, subscriber, reason, error, attempts)
        with self._lock:
            if len(self._dead) == self._dead.maxlen:
                log.warning("dead-letter queue full: dropping the oldest letter")
            self._dead.append(letter)
            self._topics.setdefault(message.topic, _Count()).dead_lettered += 1
            if subscriber is not None:
                self._subscribers.setdefault(subscriber, _Count()).dead_lettered += 1
        self._changed()
        log.warning(
            "message %d to %r dead-lettered (%s%s)",
            message.id,
            message.topic,
            reason,
            f", {subscriber}" if subscriber else "",
        )

    def dead_letters(self) -> list[DeadLetter]:
        """The dead-letter queue, oldest first."""
        with self._lock:
            return list(self._dead)

    def clear_dead_letters(self) -> list[DeadLetter]:
        """Empty the dead-letter queue; returns what it held."""
        with self._lock:
            letters = list(self._dead)
            self._dead.clear()
        return letters

    def counters(self) -> dict[str, dict[str, Counters]]:
        """``{"topics": {topic: Counters}, "subscribers": {name: Counters}}``."""
        with self._lock:
            return {
                "topics": {t: c.frozen() for t, c in sorted(self._topics.items())},
                "subscribers": {s: c.frozen() for s, c in sorted(self._subscribers.items())},
            }

    def subscribers(self) -> dict[str, tuple[str, ...]]:
        """Every mailbox and its patterns."""
        with self._lock:
            return {name: m.patterns for name, m in sorted(self._mailboxes.items())}

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every message published so far is handled or dead-lettered (and
        so every message those handlers published, when they published before
        returning); False when ``timeout`` seconds pass first. Never call it from a
        handler: it would wait for itself."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight <= 0, timeout)

    def snapshot(self, *, dead_letters: int = 20) -> dict[str, Any]:
        """Counters, subscribers and the last ``dead_letters`` letters as JSON-ready
        data (what :meth:`record_status` writes)."""
        counts = self.counters()
        letters = self.dead_letters()
        recent = letters[-dead_letters:] if dead_letters > 0 else []
        return {
            "topics": {t: attrs.asdict(c) for t, c in counts["topics"].items()},
            "subscribers": {s: attrs.asdict(c) for s, c in counts["subscribers"].items()},
            "mailboxes": {name: list(p) for name, p in self.subscribers().items()},
            "dead_letters": {
                "kept": len(letters),
                "recent": [_letter_json(d) for d in recent],
            },
        }

    def record_status(
        self,
        file: StatusFile | None,
        *,
        app: str,
        links: Callable[[], Iterable[object]] = list,
        interval: float = 1.0,
    ) -> StatusWriter | None:
        """Keep ``file`` (see :mod:`.status`) up to date with :meth:`snapshot` and the
        ``links()`` (attrs objects, e.g. ``PluginHost.links``), at most every
        ``interval`` seconds; ``None`` stops. Replaces an earlier writer (its last write
        is flushed). The last write, when the host closes, keeps the links and mailboxes
        the host had before it unloaded its plugins."""
        old, self._status, self._remember = self._status, None, lambda loaded: None
        if old is not None:
            old.flush()
        if file is None:
            return None
        from .status import StatusWriter

        last: dict[str, Any] = {"links": [], "mailboxes": {}, "loaded": True}

        def remember(loaded: bool) -> None:
            # Closing unloads every plugin first: the closing write shows what the host had
            # before its first unload since the last load.
            if loaded:
                last["loaded"] = True
                return
            if not last["loaded"]:
                return
            last["loaded"] = False
            now = {
                "links": [attrs.asdict(x) for x in links()],  # type: ignore[arg-type]
                "mailboxes": {name: list(p) for name, p in self.subscribers().items()},
            }
            last.update({k: v for k, v in now.items() if v})

        def body(closed: bool) -> dict[str, Any]:
            data = {**self.snapshot(), "links": [attrs.asdict(x) for x in links()]}  # type: ignore[arg-type]
            for key in ("links", "mailboxes"):
                if closed and not data[key]:
                    data[key] = last[key]
            return data

        writer = StatusWriter(file, body, app=app, interval=interval)
        self._status, self._remember = writer, remember
        writer.changed()
        return writer

    def close(self) -> None:
        with self._lock:
            mailboxes = list(self._mailboxes.values())
            self._mailboxes.clear()
        for mailbox in mailboxes:
            mailbox.close()
        status, self._status = self._status, None
        if status is not None:
            status.close()


def _letter_json(letter: DeadLetter) -> dict[str, Any]:
    message = letter.message
    return {
        "id": message.id,
        "topic": message.topic,
        "sender": message.sender,
        "size": len(message.payload),
        "subscriber": letter.subscriber,
        "reason": letter.reason,
        "error": letter.error,
        "attempts": letter.attempts,
        "at": letter.at,
    }
