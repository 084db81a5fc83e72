"""The batch API's contract, for both twins."""

from __future__ import annotations

import json
from types import ModuleType

import pytest

from golden_cases import local_zone

EVENT = (
    b'{"id":"event-12345","type":"user.action","source":"user-service",'
    b'"timestamp":"2025-01-11T10:30:00Z","data":{"action":"login","user_id":"67890"}}'
)
REPLY = "$JS.ACK.EVENTS.events-audit-durable.1.42.42.1736591399987654321.7"
NOW = 1736591400123456789


def test_structured_json_line(formatter: ModuleType) -> None:
    with local_zone("UTC"):
        out = formatter.format_batch(["events.user.action"], [REPLY], [EVENT], NOW, 0)
    assert out == (
        b'{"consumer":"events-audit-durable","data_size":144,"delivered":1,'
        b'"event_data":{"action":"login","user_id":"67890"},"event_id":"event-12345",'
        b'"event_timestamp":"2025-01-11T10:30:00Z","event_type":"user.action",'
        b'"js_timestamp":"2025-01-11T10:29:59Z","level":"info","msg":"Received structured event",'
        b'"pending":7,"reply":"' + REPLY.encode() + b'","sequence":42,"source":"user-service",'
        b'"stream":"EVENTS","subject":"events.user.action","time":"11.01.2025 10:30:00.123"}\n'
    )


def test_one_bytes_object_for_the_batch(formatter: ModuleType) -> None:
    payloads = [EVENT, b"plain text", bytearray(b"null"), memoryview(b"x" + EVENT)[1:]]
    with local_zone("Europe/Moscow"):
        out = formatter.format_batch(["a"] * 4, [REPLY, "", "_INBOX.1", REPLY], payloads, NOW, 0)
    assert isinstance(out, bytes)
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["msg"].split()[1] for r in records] == [
        "structured",
        "raw",
        "structured",
        "structured",
    ]
    assert {r["time"] for r in records} == {"11.01.2025 13:30:00.123"}  # one time per batch
    assert records[3]["event_id"] == "event-12345"  # a memoryview slice is read in place


def test_subjects_and_replies_may_be_bytes(formatter: ModuleType) -> None:
    as_str = formatter.format_batch(["s.x"], [REPLY], [b"x"], NOW, 1)
    as_bytes = formatter.format_batch([b"s.x"], [REPLY.encode()], [b"x"], NOW, 1)
    assert as_str == as_bytes


def test_invalid_utf8_subject_round_trips(formatter: ModuleType) -> None:
    # nats-py hands over str; bytes that are not UTF-8 arrive as surrogates
    subject = b"s.\xff".decode("utf-8", "surrogateescape")
    out = formatter.format_batch([subject], [""], [b"x"], NOW, 1)
    assert b'subject="s.\\xff"' in out


def test_empty_batch(formatter: ModuleType) -> None:
    assert formatter.format_batch([], [], [], NOW, 0) == b""


def test_bad_arguments(formatter: ModuleType) -> None:
    with pytest.raises(ValueError, match="differ in length"):
        formatter.format_batch(["a"], [], [b"x"], NOW, 0)
    with pytest.raises(ValueError, match="layout"):
        formatter.format_batch(["a"], [""], [b"x"], NOW, 7)
    with pytest.raises(TypeError):
        formatter.format_batch(["a"], [""], ["not bytes"], NOW, 0)


def test_layouts_are_the_same_numbers(formatter: ModuleType) -> None:
    assert (formatter.LAYOUT_JSON, formatter.LAYOUT_TEXT, formatter.LAYOUT_COLOR) == (0, 1, 2)
