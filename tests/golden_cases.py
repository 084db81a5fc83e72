"""Loads the committed golden vectors (tests/golden) for the formatter tests."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"
LAYOUT_NAMES = {"json": 0, "text": 1, "color": 2}


@dataclass(frozen=True)
class GoldenCase:
    name: str
    subject: str
    reply: str
    payload: bytes
    now_ns: int
    tz: str
    lines: dict[str, bytes]  # layout name -> the line logrus wrote, with its "\n"


def _read_jsonl(path: Path) -> list[dict]:
    # Split on "\n" only: the lines hold raw U+0085 and U+2028, which
    # str.splitlines() would treat as line breaks.
    text = path.read_text(encoding="utf-8")
    return [json.loads(line) for line in text.split("\n") if line.strip()]


def load_golden_cases() -> list[GoldenCase]:
    cases = _read_jsonl(GOLDEN_DIR / "cases.jsonl")
    golden = _read_jsonl(GOLDEN_DIR / "golden.jsonl")
    assert len(cases) == len(golden), "cases.jsonl and golden.jsonl differ in length"
    result = []
    for case, expected in zip(cases, golden, strict=True):
        assert case["name"] == expected["name"]
        result.append(
            GoldenCase(
                name=case["name"],
                subject=case["subject"],
                reply=case["reply"],
                payload=base64.b64decode(case["data_b64"]),
                now_ns=case["now_unix_nano"],
                tz=case.get("tz") or "UTC",
                lines={name: (expected[name] + "\n").encode() for name in LAYOUT_NAMES},
            )
        )
    return result


@contextmanager
def local_zone(name: str) -> Iterator[None]:
    """Run with TZ=name, as a process started in that zone would."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = name
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()
