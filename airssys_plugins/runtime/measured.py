"""What a load keeps of the measuring walks (:mod:`.measure`): each export's measuring and
real lift (:class:`Measured`) and the walks' refusal value (:data:`INVALID`).

A new process that reads a component's checked types from the compile cache needs these
names and none of :mod:`.measure`'s code, which writes the walks into the component
(about 0.7 ms of bytecode and classes to import).
"""

from __future__ import annotations

from typing import Final

from .. import _attrs as attrs

__all__ = ["INVALID", "Measured", "MeasuredExports"]

#: What a walk returns for data the lift itself will refuse (then the lift says why).
INVALID: Final = 2**64 - 1


@attrs.frozen
class Measured:
    """The measuring export and the real lift of one function (see :mod:`.measure`)."""

    shape: str
    real: str


MeasuredExports = dict[tuple[str | None, str], Measured]
