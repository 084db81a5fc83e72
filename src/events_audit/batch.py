"""Turns a fetched batch into the bytes to write before and after its acks.

Event lines are info entries from the batch formatter.  At debug level the
original also logs, per message, "Processing JetStream message" before its
event line and "Message processed and acknowledged" after its ack; those two
are rendered here in Python (debug output is not the fast path).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence

from . import formatting
from ._formatting_py import parse_ack_reply
from .config import format_duration
from .logs import Logger


class Renderer:
    def __init__(self, log: Logger) -> None:
        self.log = log
        self.layout = log.layout
        self.events = log.enabled("info")
        self.debug = log.enabled("debug")

    def before_ack(
        self,
        subjects: Sequence[str],
        replies: Sequence[str],
        payloads: Sequence[bytes | memoryview],
        now_ns: int,
    ) -> bytes:
        """The lines that must be written before the batch is acked."""
        if not self.events:
            return b""
        if not self.debug:
            return formatting.format_batch(subjects, replies, payloads, now_ns, self.layout)
        parts = []
        for subject, reply, payload in zip(subjects, replies, payloads, strict=True):
            meta = parse_ack_reply(reply) or {}
            parts.append(
                self.log.line(
                    "debug",
                    "Processing JetStream message",
                    {
                        "subject": subject,
                        "stream": meta.get("stream", ""),
                        "consumer": meta.get("consumer", ""),
                        "delivered": meta.get("delivered", 0),
                        "pending": meta.get("pending", 0),
                        "timestamp": meta.get("js_timestamp", ""),
                        "size": len(payload),
                    },
                    now_ns,
                )
            )
            parts.append(
                formatting.format_batch([subject], [reply], [payload], now_ns, self.layout)
            )
        return b"".join(parts)

    def after_ack(self, subjects: Sequence[str], replies: Sequence[str], started_ns: int) -> bytes:
        """At debug level, the per-message lines that follow the acks."""
        if not self.debug:
            return b""
        now = time.time_ns()
        return self.after_lines(subjects, replies, format_duration((now - started_ns) / 1e9), now)

    def after_lines(
        self, subjects: Sequence[str], replies: Sequence[str], elapsed: str, now: int
    ) -> bytes:
        return b"".join(
            self.log.line(
                "debug",
                "Message processed and acknowledged",
                {
                    "subject": subject,
                    "processing_time": elapsed,
                    "delivered": (parse_ack_reply(reply) or {}).get("delivered", 0),
                },
                now,
            )
            for subject, reply in zip(subjects, replies, strict=True)
        )


# What only the line of a structured event has, per layout: a payload cannot
# produce it, its quotes and ESC bytes are always escaped.
_STRUCTURED = (
    re.compile(rb'"msg":"Received structured event"'),
    re.compile(rb' msg="Received structured event"'),
    re.compile(rb"\x1b\[0m\[[^\]\n]*\] Received structured event"),
)


def count_structured(lines: bytes, layout: int) -> int:
    """How many of the rendered event lines are structured events."""
    return len(_STRUCTURED[layout].findall(lines))
