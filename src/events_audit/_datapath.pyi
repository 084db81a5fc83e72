"""Type stub for the compiled data path ``events_audit._datapath`` (ext/_datapath.pyx).

Same names as the pure twin ``events_audit._datapath_py``.
"""

from typing import Self

from typing_extensions import Buffer

__all__ = ["DataPath", "ProtocolViolation"]

class ProtocolViolation(ValueError):
    """The byte stream is not the NATS protocol."""

class DataPath:
    """The frames of one pull subscription, taken out of the byte stream."""

    @property
    def sid(self) -> int: ...
    @property
    def debug(self) -> bool: ...
    @property
    def max_sequence(self) -> int:
        """The highest stream sequence of the last feed."""

    # Cython's __cinit__: the arguments go to __new__ (the runtime __init__ is object's).
    def __new__(cls, sid: int, layout: int, events: bool = True, debug: bool = False) -> Self: ...
    def reset(self) -> None:
        """Forget a partial frame: the connection it came on is gone."""

    def feed(
        self, data: Buffer, now_ns: int
    ) -> tuple[bytes, bytes, bytes, int, int, int, list[tuple[int, str, int, int]]]:
        """(other frames, lines, acks, messages, structured, redelivered, statuses)."""

    def settle_failed(
        self, max_deliver: int, nak_payload: Buffer, excerpt: int = 256
    ) -> tuple[bytes, list[tuple[int, int, bytes]]]:
        """The last feed could not be written: NAK each message, or TERM the
        ones at their last delivery.  (frames, [(sequence, delivered, excerpt)])."""

    def processed(self, elapsed: str, now_ns: int) -> bytes:
        """At debug level, "Message processed and acknowledged" for the last feed."""

    def frames(self, payload: Buffer) -> bytes:
        """A PUB frame with `payload` to each reply of the last feed (NAK, +WPI, +TERM)."""
