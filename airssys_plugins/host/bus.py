"""A host's messaging as every load sees it: the check of a subscriber's export, and
:class:`MessagingFront`, which stands for the host's :class:`.messaging.Messaging` until
something needs it.

The topics, mailboxes, dead letters and counters (:mod:`.messaging`) are imported, and
the host's ``Messaging`` made, when a loaded plugin exports ``on-message`` or is granted
the ``messaging`` interface and publishes, or the application first uses
``host.messaging`` (``publish``, ``subscribe``, ``request``, a status file). A host whose
plugins do none of that never imports them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, final

from .._errors import ContractMismatchError, Mismatch, PluginLoadError
from ..policy.capabilities import Capabilities
from ..runtime import ComponentImage
from .firstuse import FirstUse
from .interfaces import SUBSCRIBER_INTERFACE, PluginContext, subscriber_signature
from .plugin import WasmPlugin

if TYPE_CHECKING:
    from ..contract.annotations import Result
    from .messaging import Messaging  # noqa: F401 (the base class names it, as a string)

__all__ = ["MessagingFront", "check_subscriber"]


def check_subscriber(name: str, image: ComponentImage, rights: Capabilities) -> None:
    """Refuse a plugin granted ``subscribe`` patterns that exports no fitting handler."""
    found = image.find_export(SUBSCRIBER_INTERFACE, "on-message")
    if found is None:
        if rights.subscribe:
            raise PluginLoadError(
                f"plugin {name!r} subscribes to {', '.join(sorted(rights.subscribe))} but does "
                f"not export {SUBSCRIBER_INTERFACE}#on-message; export it (its WIT is in "
                "`airssys-plugins wit --host`) or remove subscribe from its manifest",
                plugin=name,
            )
        return
    iface, sig = found
    expected = subscriber_signature()
    if sig.param_types != expected.param_types or sig.result != expected.result:
        raise ContractMismatchError(
            name,
            [
                Mismatch(
                    "on-message",
                    expected.render(expanded=True),
                    sig.render(expanded=True),
                    f"{iface}#on-message has the wrong type",
                )
            ],
        )


def _subscriber(plugin: WasmPlugin) -> bool:
    return plugin.image.find_export(SUBSCRIBER_INTERFACE, "on-message") is not None


@final
class MessagingFront(FirstUse["Messaging"]):
    """The host's :class:`.messaging.Messaging`, made by ``make`` when first needed
    (``front()``, see :class:`.firstuse.FirstUse`); until then, loads and unloads of
    plugins that export no ``on-message`` have nothing to tell it."""

    __slots__ = ()

    def prepare(self, plugin: WasmPlugin) -> None:
        """:meth:`.Messaging.prepare`: binds ``plugin``'s on-message, if it exports one."""
        if self.made is not None or _subscriber(plugin):
            self().prepare(plugin)

    def attach(self, plugin: WasmPlugin) -> None:
        """:meth:`.Messaging.attach`: a plugin's mailbox, if it subscribes (is granted
        patterns and exports on-message)."""
        if self.made is not None or (plugin.capabilities.subscribe and _subscriber(plugin)):
            self().attach(plugin)

    def detach(self, name: str) -> None:
        """:meth:`.Messaging.detach`: nothing to close before the messaging is made."""
        made = self.made
        if made is not None:
            made.detach(name)

    def publish_from(self, context: PluginContext, topic: str, payload: bytes) -> None:
        """``messaging.publish`` of a plugin granted the interface."""
        self().publish_from(context, topic, payload)

    def request_from(
        self, context: PluginContext, topic: str, payload: bytes, timeout: float
    ) -> Result[bytes, str]:
        """``messaging.request`` of a plugin granted the interface."""
        return self().request_from(context, topic, payload, timeout)
