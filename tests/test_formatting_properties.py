"""Property tests: the compiled twin and the pure twin agree on any input, and
every line is exactly one line (log injection is impossible)."""

from __future__ import annotations

import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events_audit import _formatting_py as pure

if os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS"):
    pytest.skip("the compiled twin is switched off", allow_module_level=True)

from events_audit import _formatting as compiled  # noqa: E402  (an ImportError fails the run)

LAYOUTS = (pure.LAYOUT_JSON, pure.LAYOUT_TEXT, pure.LAYOUT_COLOR)
NOW_NS = 1736591400123456789

# Characters that stress every rule: escapes, HTML, separators, invalid
# surrogate escapes, non-printables from several Unicode versions.
TRICKY = (
    '"\\/<>&\x00\x01\x07\x08\x0c\n\r\t\x1b\x7f\u0085\u00a0\u2028\u2029\ufeff\ufffd'
    "\u0378\U0001fae0\U0001f6dc\u2ffc\ue000\u017f\u0131éЖ😀 abcXYZ019-._/@^+:=[]{},"
)
text = st.text(
    alphabet=st.sampled_from(TRICKY) | st.characters(exclude_categories=["Cs"]), max_size=24
)
# Subjects and replies as nats-py hands them over: str, with bytes that are
# not UTF-8 carried as surrogate escapes.
wire_text = text | st.binary(max_size=24).map(lambda b: b.decode("utf-8", "surrogateescape"))
keys = (
    st.sampled_from(
        ["id", "ID", "type", "TyPe", "source", "ſource", "timestamp", "data", "DATA", "x", "", "é"]
    )
    | text
)
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**30), 10**30)
scalars = st.none() | st.booleans() | numbers | text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=20,
)
timestamps = (
    st.sampled_from(
        [
            "2025-01-11T10:30:00Z",
            "2025-01-11T10:30:00.123+05:30",
            "2025-01-11T1:30:00,5-00:00",
            "2025-02-29T10:30:00Z",
            "2024-02-29T23:59:59+24:00",
            "0000-01-01T00:00:00+00:60",
            "2025-01-11 10:30:00Z",
            "9999-12-31T23:59:59-23:59",
        ]
    )
    | text
)


@st.composite
def events(draw) -> bytes:
    """Event-shaped JSON, sometimes with members of the wrong type."""
    members = draw(st.lists(st.tuples(keys, json_values | timestamps), max_size=7))
    body = ",".join(json.dumps(k) + ":" + json.dumps(v) for k, v in members)
    document = "{" + body + "}"
    if draw(st.booleans()):
        document = document.replace(",", draw(st.sampled_from([", ", ",\n", " ,\t"])))
    encoded = document.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:  # now and then a damaged document
        cut = draw(st.integers(0, len(encoded)))
        encoded = encoded[:cut] + draw(st.binary(max_size=3)) + encoded[cut:]
    return encoded


payloads = (
    st.binary(max_size=64)
    | events()
    | json_values.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass"))
)
digits = st.text(alphabet="0123456789", min_size=0, max_size=21) | st.sampled_from(["", "x", "-1"])
replies = st.one_of(
    st.just(""),
    wire_text,
    st.builds(
        lambda s, c, n: f"$JS.ACK.{s}.{c}.{n[0]}.{n[1]}.{n[2]}.{n[3]}.{n[4]}",
        text,
        text,
        st.tuples(digits, digits, digits, digits, digits),
    ),
    st.builds(
        lambda d, n: f"$JS.ACK.{d}.hash.S.C.{n[0]}.{n[1]}.{n[2]}.{n[3]}.{n[4]}.tok",
        st.sampled_from(["_", "hub", ""]),
        st.tuples(digits, digits, digits, digits, digits),
    ),
)
messages = st.lists(st.tuples(wire_text, replies, payloads), min_size=1, max_size=8)
COLOR_CODES = re.compile(rb"\x1b\[(?:36|0)m")


def _format_both(batch, now_ns, layout):
    subjects, reply_list, payload_list = zip(*batch, strict=True)
    want = pure.format_batch(subjects, reply_list, payload_list, now_ns, layout)
    got = compiled.format_batch(subjects, reply_list, payload_list, now_ns, layout)
    return got, want


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    batch=messages,
    layout=st.sampled_from(LAYOUTS),
    now_ns=st.integers(-(2**62), 2**62) | st.just(NOW_NS),
)
def test_compiled_and_pure_agree(batch, layout, now_ns) -> None:
    got, want = _format_both(batch, now_ns, layout)
    assert got == want


@settings(max_examples=300, deadline=None)
@given(payload=st.binary(max_size=256), layout=st.sampled_from(LAYOUTS))
def test_agree_on_arbitrary_bytes(payload: bytes, layout: int) -> None:
    got, want = _format_both([("events.x", "$JS.ACK.S.C.1.2.3.4.5", payload)], NOW_NS, layout)
    assert got == want


@settings(max_examples=200, deadline=None)
@given(batch=messages, layout=st.sampled_from(LAYOUTS))
def test_one_line_per_message_and_no_injection(batch, layout) -> None:
    out, _ = _format_both(batch, NOW_NS, layout)
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == len(batch) + 1
    for line in lines[:-1]:
        assert b"\r" not in line
        if layout == pure.LAYOUT_COLOR:
            line = COLOR_CODES.sub(b"", line)
        assert b"\x1b" not in line, "an ESC byte from the input reached the output"
        if layout == pure.LAYOUT_JSON:
            record = json.loads(line)
            assert record["level"] == "info"
            assert record["msg"] in ("Received structured event", "Received raw event")
