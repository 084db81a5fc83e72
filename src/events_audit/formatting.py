"""Selects the batch formatter: the compiled one unless told otherwise.

``EVENTS_AUDIT_NO_EXTENSIONS=1`` (or a non-CPython runtime) forces the pure
Python twin, which is the readable specification of the same API.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

NO_EXTENSIONS = bool(os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS")) or (
    sys.implementation.name != "cpython"
)

if TYPE_CHECKING or NO_EXTENSIONS:
    from ._formatting_py import LAYOUT_COLOR, LAYOUT_JSON, LAYOUT_TEXT, format_batch
else:
    try:
        from ._formatting import LAYOUT_COLOR, LAYOUT_JSON, LAYOUT_TEXT, format_batch
    except ImportError:  # pragma: no cover - a build without the extension
        from ._formatting_py import LAYOUT_COLOR, LAYOUT_JSON, LAYOUT_TEXT, format_batch

USING_EXTENSION: bool = format_batch.__module__ == "events_audit._formatting"

__all__ = ["LAYOUT_COLOR", "LAYOUT_JSON", "LAYOUT_TEXT", "USING_EXTENSION", "format_batch"]
