"""Pure-Python twin of the compiled data path, and its readable spec.

The fast engine leaves the NATS connection to nats-py but takes the frames of
its pull subscription out of the byte stream before nats-py's parser would
make a ``Msg`` and a task for each.  ``DataPath.feed`` gets every chunk the
connection reads and returns, in one pass:

* the other frames (PING, INFO, replies to other subscriptions, ...), whole
  and in order, for nats-py's own parser;
* the log lines of the data messages, ready for one ``write()``;
* their ack frames (``PUB <reply> 0``), ready for one socket write after it;
* counts, and the status frames of the pull (100 heartbeat, 404/408 request
  ended, 409 ...).

A frame cut by the end of a chunk is kept until the next one.
"""

from __future__ import annotations

from ._formatting_py import format_message, local_log_time, parse_ack_reply
from .logs import format_entry

__all__ = ["DataPath", "ProtocolViolation"]


class ProtocolViolation(ValueError):
    """The byte stream is not the NATS protocol."""


def _status(headers: bytes) -> tuple[int, str, int, int] | None:
    """(code, description, pending messages, pending bytes) of a status frame."""
    first, _, rest = headers.partition(b"\r\n")
    parts = first.split(None, 2)
    if len(parts) < 2 or parts[0] != b"NATS/1.0" or not parts[1].isdigit():
        return None  # a data message that carries headers
    description = parts[2].decode("utf-8", "replace") if len(parts) > 2 else ""
    pending = {b"Nats-Pending-Messages": 0, b"Nats-Pending-Bytes": 0}
    for line in rest.split(b"\r\n"):
        key, sep, value = line.partition(b":")
        if sep and key in pending and value.strip().isdigit():
            pending[key] = int(value.strip())
    return (
        int(parts[1]),
        description,
        pending[b"Nats-Pending-Messages"],
        pending[b"Nats-Pending-Bytes"],
    )


class DataPath:
    def __init__(self, sid: int, layout: int, events: bool = True, debug: bool = False) -> None:
        if layout not in (0, 1, 2):
            raise ValueError(f"unknown layout {layout!r}")
        self.sid = sid
        self.layout = layout
        self.events = events
        self.debug = debug and events  # the original's per-message debug lines
        self._tail = b""
        self._replies: list[bytes] = []
        self._subjects: list[bytes] = []
        self._payloads: list[bytes] = []
        self.max_sequence = 0

    def reset(self) -> None:
        """Forget a partial frame: the connection it came on is gone."""
        self._tail = b""

    def feed(
        self, data: bytes, now_ns: int
    ) -> tuple[bytes, bytes, bytes, int, int, int, list[tuple[int, str, int, int]]]:
        """(other frames, lines, acks, messages, structured, redelivered, statuses)."""
        buf = self._tail + bytes(data)
        self.max_sequence = 0  # the highest stream sequence of this feed
        log_time = local_log_time(now_ns)
        other: list[bytes] = []
        lines: list[str] = []
        acks: list[bytes] = []
        replies: list[bytes] = []
        subjects: list[bytes] = []
        payloads: list[bytes] = []
        statuses: list[tuple[int, str, int, int]] = []
        structured = redelivered = 0
        pos = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            op, _, rest = buf[pos:eol].partition(b" ")
            if op not in (b"MSG", b"HMSG"):
                other.append(buf[pos : eol + 2])  # PING, PONG, +OK, -ERR, INFO
                pos = eol + 2
                continue
            args = rest.split()
            with_headers = op == b"HMSG"
            if len(args) not in ((4, 5) if with_headers else (3, 4)):
                raise ProtocolViolation(f"malformed {op.decode()} line {buf[pos:eol]!r}")
            try:
                size = int(args[-1])
                header_size = int(args[-2]) if with_headers else 0
                sid = int(args[1])
            except ValueError:
                raise ProtocolViolation(f"malformed {op.decode()} line {buf[pos:eol]!r}") from None
            end = eol + 2 + size + 2
            if end > len(buf):
                break  # the rest of this frame comes with the next chunk
            if sid != self.sid:
                other.append(buf[pos:end])
                pos = end
                continue
            subject = args[0]
            reply = args[2] if len(args) == (5 if with_headers else 4) else b""
            body = buf[eol + 2 : eol + 2 + size]
            pos = end
            if with_headers:
                status = _status(body[:header_size])
                if status is not None:
                    statuses.append(status)
                    continue
                body = body[header_size:]
            replies.append(reply)
            subjects.append(subject)
            payloads.append(body)
            acks.append(b"PUB " + reply + b" 0\r\n\r\n")
            meta = parse_ack_reply(reply.decode("utf-8", "surrogateescape")) if reply else None
            if self.debug:
                lines.append(self._processing(subject, meta, len(body), now_ns))
            if self.events:
                line, is_event = format_message(subject, reply, body, log_time, self.layout)
                lines.append(line)
                structured += is_event
            if meta is not None:
                redelivered += meta["delivered"] > 1
                self.max_sequence = max(self.max_sequence, meta["sequence"])
        self._tail = buf[pos:]
        self._replies = replies
        self._subjects = subjects
        self._payloads = payloads
        return (
            b"".join(other),
            "".join(lines).encode("utf-8", "surrogateescape"),
            b"".join(acks),
            len(replies),
            structured,
            redelivered,
            statuses,
        )

    def _processing(self, subject: bytes, meta: dict | None, size: int, now_ns: int) -> str:
        meta = meta or {}
        return format_entry(
            "debug",
            "Processing JetStream message",
            {
                "subject": subject.decode("utf-8", "surrogateescape"),
                "stream": meta.get("stream", ""),
                "consumer": meta.get("consumer", ""),
                "delivered": meta.get("delivered", 0),
                "pending": meta.get("pending", 0),
                "timestamp": meta.get("js_timestamp", ""),
                "size": size,
            },
            now_ns,
            self.layout,
        )

    def processed(self, elapsed: str, now_ns: int) -> bytes:
        """At debug level, "Message processed and acknowledged" for the last feed."""
        if not self.debug:
            return b""
        lines = []
        for subject, reply in zip(self._subjects, self._replies, strict=True):
            meta = parse_ack_reply(reply.decode("utf-8", "surrogateescape")) if reply else None
            lines.append(
                format_entry(
                    "debug",
                    "Message processed and acknowledged",
                    {
                        "subject": subject.decode("utf-8", "surrogateescape"),
                        "processing_time": elapsed,
                        "delivered": (meta or {}).get("delivered", 0),
                    },
                    now_ns,
                    self.layout,
                )
            )
        return "".join(lines).encode("utf-8", "surrogateescape")

    def settle_failed(
        self, max_deliver: int, nak_payload: bytes, excerpt: int = 256
    ) -> tuple[bytes, list[tuple[int, int, bytes]]]:
        """The last feed could not be written: NAK each message, or TERM the
        ones at their last delivery.  (frames, [(sequence, delivered, excerpt)])."""
        frames = []
        termed = []
        for reply, payload in zip(self._replies, self._payloads, strict=True):
            meta = parse_ack_reply(reply.decode("utf-8", "surrogateescape")) or {
                "delivered": 0,
                "sequence": 0,
            }
            if max_deliver > 0 and meta["delivered"] >= max_deliver:
                frames.append(b"PUB " + reply + b" 5\r\n+TERM\r\n")
                termed.append((meta["sequence"], meta["delivered"], payload[:excerpt]))
            else:
                frames.append(
                    b"PUB " + reply + b" %d\r\n" % len(nak_payload) + nak_payload + b"\r\n"
                )
        return b"".join(frames), termed

    def frames(self, payload: bytes) -> bytes:
        """A PUB frame with `payload` to each reply of the last feed (NAK, +WPI, +TERM)."""
        size = str(len(payload)).encode()
        return b"".join(
            b"PUB " + reply + b" " + size + b"\r\n" + payload + b"\r\n" for reply in self._replies
        )
