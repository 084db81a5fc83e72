"""Selects the data path: the compiled one unless told otherwise (as formatting.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .formatting import NO_EXTENSIONS

if TYPE_CHECKING or NO_EXTENSIONS:
    from ._datapath_py import (
        DataPath,
        ProtocolViolation,
        line_checksums,
        processed_lines,
        reply_frames,
        settle_frames,
    )
else:
    try:
        from ._datapath import (
            DataPath,
            ProtocolViolation,
            line_checksums,
            processed_lines,
            reply_frames,
            settle_frames,
        )
    except ImportError:  # pragma: no cover - a build without the extension
        from ._datapath_py import (
            DataPath,
            ProtocolViolation,
            line_checksums,
            processed_lines,
            reply_frames,
            settle_frames,
        )

USING_EXTENSION: bool = DataPath.__module__ == "events_audit._datapath"

__all__ = [
    "USING_EXTENSION",
    "DataPath",
    "ProtocolViolation",
    "line_checksums",
    "processed_lines",
    "reply_frames",
    "settle_frames",
]
