"""Type stub for the compiled formatter ``events_audit._formatting`` (ext/_formatting.pyx).

Same names as the pure twin ``events_audit._formatting_py``.
"""

from collections.abc import Sequence
from typing import Final

from typing_extensions import Buffer

__all__ = ["LAYOUT_COLOR", "LAYOUT_JSON", "LAYOUT_TEXT", "format_batch"]

LAYOUT_JSON: Final = 0
LAYOUT_TEXT: Final = 1
LAYOUT_COLOR: Final = 2

def format_batch(
    subjects: Sequence[str | bytes],
    replies: Sequence[str | bytes],
    payloads: Sequence[Buffer],
    now_ns: int,
    layout: int,
) -> bytes:
    """The log lines of a whole batch, one per message, as one bytes object.

    All lines carry the same entry time, ``now_ns`` (Unix ns) in local time.
    """
