"""Reading the service's log files back: any layout, plain or gzip.

``verify`` and the digest check read what the service wrote.  Each line is
parsed the way logrus wrote it: JSONFormatter lines are JSON objects; the
TextFormatter writes ``key=value`` pairs whose value is bare or Go-quoted
(``%q``), and on a terminal puts the level and the message in front and
colours each key.  Keys are parsed in order, so a payload that contains
``sequence=5`` inside a quoted value cannot pose as a field.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import orjson

from ._formatting_py import MSG_RAW, MSG_STRUCTURED

EVENT_MESSAGES = (MSG_STRUCTURED, MSG_RAW)
GZIP_MAGIC = b"\x1f\x8b"
READ_CHUNK = 1 << 20

# logrus levels as the text layouts name them
_COLOR_LEVELS = {
    "PANI": "panic",
    "FATA": "fatal",
    "ERRO": "error",
    "WARN": "warning",
    "INFO": "info",
    "DEBU": "debug",
    "TRAC": "trace",
}
_LEVELS = frozenset(_COLOR_LEVELS.values())

_QUOTED = r'"(?:[^"\\]|\\.)*"'
_TEXT_PAIR = re.compile(rf'([^\s="]+)=({_QUOTED}|[^ "]*)(?: |$)')
_COLOR_HEAD = re.compile(r"\x1b\[\d+m([A-Z]{4})\x1b\[0m\[([^\]]*)\] ")
_COLOR_PAIR = re.compile(rf" \x1b\[\d+m([^\x1b=]+)\x1b\[0m=({_QUOTED}|[^ \"]*)")
_GO_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)")
_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


class RecordError(Exception):
    """A log file cannot be read."""


@dataclass(slots=True)
class Entry:
    """One logrus entry: its level, message and fields (strings as written,
    numbers as ints in the JSON layout; the text layouts give strings)."""

    level: str
    msg: str
    fields: dict[str, Any]

    @property
    def is_event(self) -> bool:
        return self.level == "info" and self.msg in EVENT_MESSAGES

    def number(self, key: str) -> int | None:
        value = self.fields.get(key)
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return None


def _go_unescape(match: re.Match) -> str:
    escape = match.group(1)
    if escape[0] in "xuU" and len(escape) > 1:
        code = int(escape[1:], 16)
        # \xNN in %q output is a single byte that was not valid UTF-8
        return chr(0xDC00 + code) if escape[0] == "x" and code >= 0x80 else chr(code)
    return _SIMPLE.get(escape, escape)


def go_unquote(value: str) -> str:
    """The string a Go %q (strconv.Quote) text stands for; a bare value as is."""
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return _GO_ESCAPE.sub(_go_unescape, value[1:-1])
    return value


def _text_pairs(text: str, pattern: re.Pattern, pos: int) -> dict[str, str] | None:
    fields: dict[str, str] = {}
    while pos < len(text):
        match = pattern.match(text, pos)
        if match is None:
            return None
        fields[match.group(1)] = go_unquote(match.group(2))
        pos = match.end()
    return fields


def parse_line(line: bytes) -> Entry | None:
    """The entry a line of the service's log holds, or None when the line
    is not a logrus line of any of the three layouts."""
    line = line.rstrip(b"\n")
    if line.startswith(b"{"):
        try:
            fields = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(fields, dict):
            return None
        level, msg = fields.pop("level", None), fields.pop("msg", None)
        if level not in _LEVELS or not isinstance(msg, str):
            return None
        return Entry(level, msg, fields)
    text = line.decode("utf-8", "surrogateescape")
    if text.startswith("time="):
        fields = _text_pairs(text, _TEXT_PAIR, 0)
        if fields is None:
            return None
        level, msg = fields.pop("level", None), fields.pop("msg", None)
        if level not in _LEVELS or msg is None:
            return None
        return Entry(level, msg, fields)
    head = _COLOR_HEAD.match(text)
    if head is None or head.group(1) not in _COLOR_LEVELS:
        return None
    start = text.find(" \x1b[", head.end())
    start = len(text) if start < 0 else start
    fields = _text_pairs(text, _COLOR_PAIR, start)
    if fields is None:
        return None
    fields["time"] = head.group(2)
    return Entry(_COLOR_LEVELS[head.group(1)], text[head.end() : start].rstrip(" "), fields)


def open_log(path: str) -> BinaryIO:
    """A log file for reading, decompressed when it is gzip (by its magic
    bytes, whatever its name)."""
    try:
        handle = open(path, "rb")
        magic = handle.peek(2)[:2]
    except OSError as exc:
        raise RecordError(f"cannot read {path!r}: {exc.strerror}") from None
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=handle, mode="rb")  # type: ignore[return-value]
    return handle


def lines_of(path: str, progress: Any = None) -> Iterator[tuple[int, int, bytes]]:
    """(line number from 1, offset of its first byte, line with its newline)
    of a log file; the last one may lack its newline (a file cut short).
    ``progress.update(n)`` is told of the bytes read from the disk."""
    handle = open_log(path)
    raw = handle.fileobj if isinstance(handle, gzip.GzipFile) else handle
    number = 0
    offset = 0
    told = 0
    try:
        with handle:
            for line in handle:
                number += 1
                yield number, offset, line
                offset += len(line)
                if progress is not None and number % 4096 == 0:
                    position = raw.tell()  # type: ignore[union-attr]
                    progress.update(position - told)
                    told = position
            if progress is not None:
                progress.update(max(0, raw.tell() - told))  # type: ignore[union-attr]
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise RecordError(f"cannot read {path!r} after line {number}: {reason}") from None
