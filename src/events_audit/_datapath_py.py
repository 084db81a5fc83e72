"""Pure-Python twin of the compiled data path, and its readable spec.

The fast engine leaves the NATS connection to nats-py but takes the frames of
its pull subscription out of the byte stream before nats-py's parser would
make a ``Msg`` and a task for each.  ``DataPath.feed`` gets every chunk the
connection reads and returns, in one pass:

* the other frames (PING, INFO, replies to other subscriptions, ...), whole
  and in order, for nats-py's own parser;
* the log lines of the data messages, ready for one ``write()``;
* their ack frames (``PUB <reply> 0``), ready for one socket write after it;
* their replies (and, at debug level, subjects), one per line, from which
  ``reply_frames``, ``settle_frames`` and ``processed_lines`` build what a
  batch needs later: in-progress acks while it is written, NAK/TERM when it
  cannot be, the debug lines after its acks;
* counts, the highest stream sequence, the messages at their last delivery
  with an excerpt, and the status frames of the pull (100 heartbeat, 404/408
  request ended, 409 ...).

A frame cut by the end of a chunk is kept until the next one.  Control lines
are split on spaces and tabs only, as nats-server writes them; anything else
malformed is a ``ProtocolViolation`` (nats-py then reconnects).
"""

from __future__ import annotations

import re
import zlib

from ._formatting_py import format_message, local_log_time, parse_ack_reply
from .logs import format_entry

__all__ = [
    "DataPath",
    "ProtocolViolation",
    "line_checksums",
    "processed_lines",
    "reply_frames",
    "settle_frames",
]

EXCERPT_BYTES = 256
PIN_ID_MAX = 64  # a pin id is a 22-character NUID
_ARGS = re.compile(rb"[^ \t]+")


class ProtocolViolation(ValueError):
    """The byte stream is not the NATS protocol."""


def _number(token: bytes) -> int:
    """A size or sid: 1 to 12 ASCII digits, else -1."""
    if not 0 < len(token) <= 12 or not all(0x30 <= c <= 0x39 for c in token):
        return -1
    return int(token)


def _header_number(headers: bytes, key: bytes) -> int:
    """`key: N` on a header line (the first such line), or 0."""
    for line in headers.split(b"\r\n"):
        if line.startswith(key + b":"):
            digits = line[len(key) + 1 :].strip(b" ")
            if not digits or len(digits) > 18 or not all(0x30 <= c <= 0x39 for c in digits):
                return 0
            return int(digits)
    return 0


def _header_value(headers: bytes, key: bytes) -> bytes | None:
    """The value of the last `key: value` header line, or None."""
    found = None
    for line in headers.split(b"\r\n"):
        if line.startswith(key + b":"):
            found = line[len(key) + 1 :].strip(b" ")
    return found


def _status(headers: bytes, first_line_end: int) -> tuple[int, str, int, int]:
    """(code, description, pending messages, pending bytes) of a status block;
    its first line is "NATS/1.0 <code> <description>"."""
    line = headers[:first_line_end]
    code = line[9:12]
    if len(code) != 3 or not code.isdigit() or (len(line) > 12 and line[12:13] != b" "):
        raise ProtocolViolation("a status without a three-digit code")
    description = line[12:].lstrip(b" ").decode("utf-8", "replace")
    return (
        int(code),
        description,
        _header_number(headers, b"Nats-Pending-Messages"),
        _header_number(headers, b"Nats-Pending-Bytes"),
    )


class DataPath:
    def __init__(
        self, sid: int, layout: int, events: bool = True, debug: bool = False, max_deliver: int = -1
    ) -> None:
        if layout not in (0, 1, 2):
            raise ValueError(f"unknown layout {layout!r}")
        self.sid = sid
        self.layout = layout
        self.events = events
        self.debug = debug and events  # the original's per-message debug lines
        self.max_deliver = max_deliver
        self._tail = b""
        # The Nats-Pin-Id header of the last data message with headers in
        # the last feed (b"" if none): the server's pin with --audit-ha=pinned.
        self.pin_id = b""

    def reset(self) -> None:
        """Forget a partial frame: the connection it came on is gone."""
        self._tail = b""

    def feed(self, data: bytes, now_ns: int) -> tuple:
        """One chunk: (other frames, lines, acks, replies, subjects, messages,
        structured, redelivered, max and min sequence, last chances, statuses)."""
        fed, self._tail = self._feed(data, now_ns)
        return fed

    def feed_frames(self, data: bytes, now_ns: int) -> tuple:
        """``feed``'s tuple and then ``taken``: the bytes of ``data`` used.
        The frame that ``data`` ends inside is not kept here but left to the
        caller, who gives it again with what follows.  A frame begun in an
        earlier ``feed`` is still completed from ``data`` first (all of
        ``data`` is kept with it while even its control line is cut)."""
        kept = len(self._tail)
        whole_control_line = b"\r\n" in self._tail
        fed, rest = self._feed(data, now_ns)
        if len(rest) > len(data) or (kept and not whole_control_line):
            self._tail = rest  # the unfinished frame began in an earlier feed
            return (*fed, len(data))
        self._tail = b""
        return (*fed, len(data) - len(rest))

    def _feed(self, data: bytes, now_ns: int) -> tuple[tuple, bytes]:
        """feed's tuple, and the bytes from where the unfinished frame begins."""
        self.pin_id = b""
        buf = self._tail + bytes(data)
        log_time = local_log_time(now_ns)
        other: list[bytes] = []
        lines: list[str] = []
        acks: list[bytes] = []
        replies: list[bytes] = []
        subjects: list[bytes] = []
        last_chances: list[tuple[int, int, bytes]] = []
        statuses: list[tuple[int, str, int, int]] = []
        structured = redelivered = max_sequence = min_sequence = 0
        pos = 0
        while True:
            eol = buf.find(b"\r\n", pos)
            if eol < 0:
                break
            line = buf[pos:eol]
            op, _, rest = line.partition(b" ")
            if op not in (b"MSG", b"HMSG") or not _:
                other.append(buf[pos : eol + 2])  # PING, PONG, +OK, -ERR, INFO
                pos = eol + 2
                continue
            if b"\n" in line:
                raise ProtocolViolation("a line break inside a control line")
            args = _ARGS.findall(rest)
            with_headers = op == b"HMSG"
            if len(args) not in ((4, 5) if with_headers else (3, 4)):
                raise ProtocolViolation(f"malformed {op.decode()} line {line!r}")
            size = _number(args[-1])
            header_size = _number(args[-2]) if with_headers else 0
            sid = _number(args[1])
            if size < 0 or header_size < 0 or header_size > size or sid < 0:
                raise ProtocolViolation("malformed sid or size")
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
                headers = body[:header_size]
                if header_size >= 12 and headers.startswith(b"NATS/1.0 "):
                    line_end = headers.find(b"\r\n")
                    if line_end < 0:
                        raise ProtocolViolation("a status header without CRLF")
                    statuses.append(_status(headers, line_end))
                    continue
                pin = _header_value(headers, b"Nats-Pin-Id") or b""
                self.pin_id = pin if len(pin) <= PIN_ID_MAX else b""
                body = body[header_size:]
            replies.append(reply)
            acks.append(b"PUB " + reply + b" 0\r\n\r\n")
            meta = parse_ack_reply(reply.decode("utf-8", "surrogateescape")) if reply else None
            if self.debug:
                subjects.append(subject)
                lines.append(self._processing(subject, meta, len(body), now_ns))
            if self.events:
                line_text, is_event = format_message(subject, reply, body, log_time, self.layout)
                lines.append(line_text)
                structured += is_event
            if meta is not None:
                redelivered += meta["delivered"] > 1
                max_sequence = max(max_sequence, meta["sequence"])
                if not min_sequence or meta["sequence"] < min_sequence:
                    min_sequence = meta["sequence"]
                if 0 < self.max_deliver <= meta["delivered"]:
                    last_chances.append((meta["sequence"], meta["delivered"], body[:EXCERPT_BYTES]))
        return (
            b"".join(other),
            "".join(lines).encode("utf-8", "surrogateescape"),
            b"".join(acks),
            b"".join(r + b"\n" for r in replies),
            b"".join(s + b"\n" for s in subjects),
            len(replies),
            structured,
            redelivered,
            max_sequence,
            min_sequence,
            last_chances,
            statuses,
        ), buf[pos:]

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


def _lines(blob: bytes) -> list[bytes]:
    return blob.split(b"\n")[:-1]


def _require(kind: type, **arguments: object) -> None:
    """The compiled twin's typed arguments: exactly this type, no None."""
    for name, value in arguments.items():
        if not isinstance(value, kind):
            raise TypeError(
                f"argument {name!r} has incorrect type "
                f"(expected {kind.__name__}, got {type(value).__name__})"
            )


def reply_frames(replies: bytes, payload: bytes) -> bytes:
    """A PUB frame with `payload` (+WPI, -NAK ...) to each reply of a feed."""
    return settle_frames(replies, 0, payload)


def settle_frames(replies: bytes, max_deliver: int, nak_payload: bytes) -> bytes:
    """After a failed write: `nak_payload` to each reply of a feed, but +TERM
    to those at their last delivery (max_deliver > 0)."""
    _require(bytes, replies=replies, nak_payload=nak_payload)
    _require(int, max_deliver=max_deliver)
    frames = []
    for reply in _lines(replies):
        meta = parse_ack_reply(reply.decode("utf-8", "surrogateescape")) if reply else None
        if max_deliver > 0 and meta is not None and meta["delivered"] >= max_deliver:
            frames.append(b"PUB " + reply + b" 5\r\n+TERM\r\n")
        else:
            frames.append(b"PUB " + reply + b" %d\r\n" % len(nak_payload) + nak_payload + b"\r\n")
    return b"".join(frames)


def processed_lines(
    layout: int, subjects: bytes, replies: bytes, elapsed: str, now_ns: int
) -> bytes:
    """The original's debug "Message processed and acknowledged" per message."""
    _require(bytes, subjects=subjects, replies=replies)
    _require(str, elapsed=elapsed)
    _require(int, layout=layout, now_ns=now_ns)
    lines = []
    for subject, reply in zip(_lines(subjects), _lines(replies), strict=False):
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
                layout,
            )
        )
    return "".join(lines).encode("utf-8", "surrogateescape")


def line_checksums(data: bytes | bytearray | memoryview) -> bytes:
    """The digest's locator: zlib's CRC-32 of each line of a write, newline
    included (a last line without one too), 4 bytes little-endian each."""
    view = bytes(data)
    out = bytearray()
    start = 0
    while start < len(view):
        end = view.find(b"\n", start)
        end = len(view) if end < 0 else end + 1
        out += zlib.crc32(view[start:end]).to_bytes(4, "little")
        start = end
    return bytes(out)
