"""Batch formatting throughput: compiled extension vs. the pure Python twin.

Each round formats one batch of 1000 messages. Run with ``make bench``; these
files are not part of ``make test`` (pytest's testpaths is ``tests``).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from events_audit import _formatting as compiled
from events_audit import _formatting_py as pure

N_MESSAGES = 1000
NOW_NS = 1736591400123456789  # 2025-01-11T10:30:00.123456789Z

STRUCTURED = (
    b'{"id":"event-12345","type":"user.action","source":"user-service",'
    b'"timestamp":"2025-01-11T10:30:00Z","data":{"action":"login","user_id":"67890"}}'
)
RAW = b"Simple text message"

SUBJECTS = ["events.user.action"] * N_MESSAGES
REPLIES = [
    f"$JS.ACK.EVENTS.events-audit-durable.1.{seq}.{seq}.1736591399987654321.7"
    for seq in range(1, N_MESSAGES + 1)
]
STRUCTURED_PAYLOADS = [STRUCTURED] * N_MESSAGES
RAW_PAYLOADS = [RAW] * N_MESSAGES

FormatBatch = Callable[[list[str], list[str], list[bytes], int, int], bytes]


def _run(benchmark, format_batch: FormatBatch, payloads: list[bytes], layout: int) -> None:
    benchmark.extra_info["messages"] = N_MESSAGES
    out = benchmark(format_batch, SUBJECTS, REPLIES, payloads, NOW_NS, layout)
    assert out.count(b"\n") == N_MESSAGES


# -- compiled extension -------------------------------------------------------


@pytest.mark.benchmark(group="structured-json")
def test_format_structured_json(benchmark) -> None:
    _run(benchmark, compiled.format_batch, STRUCTURED_PAYLOADS, compiled.LAYOUT_JSON)


@pytest.mark.benchmark(group="raw-json")
def test_format_raw_json(benchmark) -> None:
    _run(benchmark, compiled.format_batch, RAW_PAYLOADS, compiled.LAYOUT_JSON)


@pytest.mark.benchmark(group="structured-text")
def test_format_structured_text(benchmark) -> None:
    _run(benchmark, compiled.format_batch, STRUCTURED_PAYLOADS, compiled.LAYOUT_TEXT)


@pytest.mark.benchmark(group="raw-text")
def test_format_raw_text(benchmark) -> None:
    _run(benchmark, compiled.format_batch, RAW_PAYLOADS, compiled.LAYOUT_TEXT)


# -- pure Python twin (same inputs, to track the speed-up) ---------------------


@pytest.mark.benchmark(group="structured-json")
def test_format_structured_json_py(benchmark) -> None:
    _run(benchmark, pure.format_batch, STRUCTURED_PAYLOADS, pure.LAYOUT_JSON)


@pytest.mark.benchmark(group="raw-json")
def test_format_raw_json_py(benchmark) -> None:
    _run(benchmark, pure.format_batch, RAW_PAYLOADS, pure.LAYOUT_JSON)


@pytest.mark.benchmark(group="structured-text")
def test_format_structured_text_py(benchmark) -> None:
    _run(benchmark, pure.format_batch, STRUCTURED_PAYLOADS, pure.LAYOUT_TEXT)


@pytest.mark.benchmark(group="raw-text")
def test_format_raw_text_py(benchmark) -> None:
    _run(benchmark, pure.format_batch, RAW_PAYLOADS, pure.LAYOUT_TEXT)


# -- large events (compiled only: the twin takes seconds) ---------------------
#
# One batch of 64 events of 4 KiB and 16 of 64 KiB: a structured event with a
# long string in its data, and a raw line, as audit records that carry a
# request or a diff.  What counts here is the cost per byte of the escaping
# and decoding loops.


def _large(size: int, count: int) -> tuple[list[bytes], list[bytes]]:
    words = "alpha bravo charlie delta echo foxtrot golf hotel india juliet "
    note = (words * (size // len(words) + 1))[: size - 180]
    event = (
        b'{"id":"event-12345","type":"user.action","source":"user-service",'
        b'"timestamp":"2025-01-11T10:30:00Z","data":{"action":"login","note":"%s"}}' % note.encode()
    )
    raw = b"raw line " + note.encode()
    return [event] * count, [raw] * count


@pytest.mark.benchmark(group="large")
@pytest.mark.parametrize("size,count", [(4 << 10, 64), (64 << 10, 16)], ids=["4KiB", "64KiB"])
@pytest.mark.parametrize("layout", ["json", "text"])
def test_format_large_events(benchmark, size, count, layout) -> None:
    structured, raw = _large(size, count)
    payloads = [p for pair in zip(structured, raw, strict=True) for p in pair]
    n = len(payloads)
    code = compiled.LAYOUT_JSON if layout == "json" else compiled.LAYOUT_TEXT
    benchmark.extra_info["bytes"] = sum(map(len, payloads))
    out = benchmark(compiled.format_batch, SUBJECTS[:n], REPLIES[:n], payloads, NOW_NS, code)
    assert out.count(b"\n") == n
