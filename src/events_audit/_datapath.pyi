"""Type stub for the compiled data path ``events_audit._datapath`` (ext/_datapath.pyx).

Same names as the pure twin ``events_audit._datapath_py``.
"""

from typing import Self

from typing_extensions import Buffer

__all__ = [
    "DataPath",
    "ProtocolViolation",
    "line_checksums",
    "processed_lines",
    "reply_frames",
    "settle_frames",
]

# feed() gives back, for one chunk:
# (other frames, lines, acks, replies, subjects, messages, structured, redelivered,
#  max sequence, min sequence (0: none), last chances [(sequence, delivered, excerpt)],
#  statuses [(code, description, pending messages, pending bytes)])
_Feed = tuple[
    bytes,
    bytes,
    bytes,
    bytes,
    bytes,
    int,
    int,
    int,
    int,
    int,
    list[tuple[int, int, bytes]],
    list[tuple[int, str, int, int]],
]
# feed_frames() gives back the same and then the bytes of the data it used.
_FeedFrames = tuple[*_Feed, int]

class ProtocolViolation(ValueError):
    """The byte stream is not the NATS protocol."""

class DataPath:
    """The frames of one pull subscription, taken out of the byte stream."""

    @property
    def sid(self) -> int: ...
    @property
    def debug(self) -> bool: ...
    @property
    def pin_id(self) -> bytes:
        """The last Nats-Pin-Id header among the data messages of the last feed."""
    # Cython's __cinit__: the arguments go to __new__ (the runtime __init__ is object's).
    def __new__(
        cls,
        sid: int,
        layout: int,
        events: bool = True,
        debug: bool = False,
        max_deliver: int = -1,
    ) -> Self: ...
    def reset(self) -> None:
        """Forget a partial frame: the connection it came on is gone."""

    def feed(self, data: Buffer, now_ns: int) -> _Feed:
        """One chunk, parsed, formatted and acked in one pass (see _Feed)."""
    def feed_frames(self, data: Buffer, now_ns: int) -> _FeedFrames:
        """As feed, but the frame that ``data`` ends inside is left to the
        caller, who gives it again with what follows (see _FeedFrames)."""

def reply_frames(replies: bytes, payload: Buffer) -> bytes:
    """A PUB frame with `payload` (+WPI, -NAK ...) to each reply of a feed."""

def settle_frames(replies: bytes, max_deliver: int, nak_payload: Buffer) -> bytes:
    """After a failed write: `nak_payload` to each reply, +TERM at the last delivery."""

def processed_lines(
    layout: int, subjects: bytes, replies: bytes, elapsed: str, now_ns: int
) -> bytes:
    """The original's debug "Message processed and acknowledged" per message."""

def line_checksums(data: Buffer) -> bytes:
    """CRC-32 of each line (newline included), 4 bytes little-endian each."""
