"""The service's own log lines (start-up, errors, stats), as logrus writes them.

Event lines come from the batch formatter; everything else the service says
goes through ``Logger``, which renders one logrus entry with the same three
layouts (JSON, key=value text, coloured text) and the same value rules.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from ._formatting_py import (
    LAYOUT_COLOR,
    LAYOUT_JSON,
    LAYOUT_TEXT,
    go_json_float,
    go_json_string,
    go_sprint_float,
    local_log_time,
    text_value,
)

# logrus levels, most severe first; an entry is written when its level is
# at or above the logger's (index <= the logger's index).
LEVELS = ("panic", "fatal", "error", "warning", "info", "debug", "trace")
_COLORS = {
    "panic": 31,
    "fatal": 31,
    "error": 31,
    "warning": 33,
    "info": 36,
    "debug": 37,
    "trace": 37,
}


def _json_value(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_json_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_json_value(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return (
            "{"
            + ",".join(go_json_string(str(k)) + ":" + _json_value(value[k]) for k in sorted(value))
            + "}"
        )
    return go_json_string(str(value))


def _sprint(value: Any) -> str:
    """fmt.Sprint of a field value."""
    if value is None:
        return "<nil>"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return go_sprint_float(value)
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_sprint(item) for item in value) + "]"
    if isinstance(value, Mapping):
        return "map[" + " ".join(f"{k}:{_sprint(value[k])}" for k in sorted(value)) + "]"
    return str(value)


def format_entry(level: str, msg: str, fields: Mapping[str, Any], now_ns: int, layout: int) -> str:
    """One logrus line (with its newline) for one entry."""
    log_time = local_log_time(now_ns)
    keys = sorted(fields)
    if layout == LAYOUT_JSON:
        record = dict(fields)
        for clash in ("time", "msg", "level"):  # logrus' prefixFieldClashes
            if clash in record:
                record["fields." + clash] = record.pop(clash)
        record.update(level=level, msg=msg, time=log_time)
        return (
            "{"
            + ",".join(
                f"{go_json_string(key)}:{_json_value(record[key])}" for key in sorted(record)
            )
            + "}\n"
        )
    if layout == LAYOUT_TEXT:
        parts = [f"time={text_value(log_time)}", f"level={level}", f"msg={text_value(msg)}"]
        parts += [f"{key}={text_value(_sprint(fields[key]))}" for key in keys]
        return " ".join(parts) + "\n"
    color = _COLORS[level]
    head = f"\x1b[{color}m{level.upper()[:4]}\x1b[0m[{log_time}] {msg:<44} "
    return (
        head
        + "".join(f" \x1b[{color}m{key}\x1b[0m={text_value(_sprint(fields[key]))}" for key in keys)
        + "\n"
    )


class Logger:
    """A logrus-like logger writing whole lines through ``write``."""

    def __init__(
        self, write: Callable[[bytes], Any], level: str = "info", layout: int = LAYOUT_TEXT
    ) -> None:
        self.write = write
        self.level = level
        self.layout = layout
        self._threshold = LEVELS.index(level)

    def enabled(self, level: str) -> bool:
        return LEVELS.index(level) <= self._threshold

    def line(
        self, level: str, msg: str, fields: Mapping[str, Any], now_ns: int | None = None
    ) -> bytes:
        now = time.time_ns() if now_ns is None else now_ns
        return format_entry(level, msg, fields, now, self.layout).encode("utf-8", "surrogateescape")

    def log(self, level: str, msg: str, **fields: Any) -> None:
        if self.enabled(level):
            self.write(self.line(level, msg, fields))

    def trace(self, msg: str, **fields: Any) -> None:
        self.log("trace", msg, **fields)

    def debug(self, msg: str, **fields: Any) -> None:
        self.log("debug", msg, **fields)

    def info(self, msg: str, **fields: Any) -> None:
        self.log("info", msg, **fields)

    def warning(self, msg: str, **fields: Any) -> None:
        self.log("warning", msg, **fields)

    def error(self, msg: str, **fields: Any) -> None:
        self.log("error", msg, **fields)


__all__ = ["LAYOUT_COLOR", "LAYOUT_JSON", "LAYOUT_TEXT", "LEVELS", "Logger", "format_entry"]
