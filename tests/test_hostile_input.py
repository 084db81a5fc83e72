"""Hostile payloads, subjects and replies through the compiled formatter and data path.

Every case goes through ``events_audit._formatting.format_batch`` and
``events_audit._datapath.DataPath.feed`` in all three layouts: no crash, no
hang (each call well under 10 s), one line per message, JSON lines that parse,
no raw CR or LF inside a line, no ESC byte except the coloured layout's own
``\\x1b[36m``/``\\x1b[0m``, and the same bytes as the pure twins.  The big cases
also run in a subprocess that reports its peak RSS (VmHWM).
"""

from __future__ import annotations

import faulthandler
import functools
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable

import pytest

from events_audit import _datapath_py as pure_path
from events_audit import _formatting_py as pure

if os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS"):
    pytest.skip("the compiled twins are switched off", allow_module_level=True)

from events_audit import _datapath as compiled_path  # noqa: E402
from events_audit import _formatting as compiled  # noqa: E402

NOW = 1736591400123456789
SID = 7
REPLY = b"$JS.ACK.EVENTS.events-audit-durable.1.42.42.1736591399987654321.7"
LAYOUTS = {"json": 0, "text": 1, "color": 2}
COLOR_ON, COLOR_OFF = "\x1b[36m", "\x1b[0m"
CALL_LIMIT = 10.0  # seconds for any one call
MEMORY_LIMIT_MB = 600
MIB = 1 << 20
HALF_ULP_ABOVE_MAX = 2**1024 - 2**970  # float64's largest value plus half an ulp

# Raw control characters that must never reach a text line unescaped (JSON
# lines may carry DEL and C1 characters raw, as Go's encoding/json does).
TEXT_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
JSON_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x1b\u2028\u2029]")

# -- the cases ------------------------------------------------------------------------

HOSTILE = {
    "nul": b"\x00",
    "cr": b"\r",
    "lf": b"\n",
    "crlf": b"\r\n",
    "ansi": b"\x1b[31m",
    "csi_c1": "\u009b31m".encode(),
    "u2028": "\u2028\u2029".encode(),
    "nel": "\u0085".encode(),
    "del": b"\x7f",
    "invalid_utf8": b"\xff\xfe",
    "overlong_nul": b"\xc0\x80",
    "surrogate": b"\xed\xa0\x80",
    "beyond_unicode": b"\xf4\x90\x80\x80",
    "truncated_utf8": b"\xe2\x82",
}
ESCAPED = rb"\u0000 \r \n \u001b[31m \u009b \u2028 \u2029 \u0085 \u007f \ud800 \udc00 \ufffd"


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def small_cases() -> dict[str, bytes]:
    cases = {}
    for name, h in HOSTILE.items():
        cases[f"raw_{name}"] = b"before " + h + b" after"
        cases[f"id_{name}"] = b'{"id":"a' + h + b'b","type":"t"}'
        cases[f"data_{name}"] = b'{"id":"x","data":{"k' + h + b'":"v' + h + b'"}}'
        cases[f"ts_{name}"] = b'{"id":"x","timestamp":"2025-01-11T10:30:00Z' + h + b'"}'
    cases["escaped_everywhere"] = (
        b'{"id":"'
        + ESCAPED
        + b'","type":"'
        + ESCAPED
        + b'","source":"'
        + ESCAPED
        + b'","data":{"'
        + ESCAPED
        + b'":["'
        + ESCAPED
        + b'"]}}'
    )
    cases["all_bytes_raw"] = bytes(range(256))
    cases["all_bytes_in_json"] = b'{"id":"' + bytes(range(0x20, 256)).replace(b'"', b"") + b'"}'
    return cases


@functools.cache
def big_cases() -> dict[str, bytes]:
    every_byte = bytes(range(256))
    hostile_run = b"".join(HOSTILE.values())
    return {
        "8mib_every_byte": every_byte * (8 * MIB // 256),
        "8mib_json_string": b'{"id":"x","data":{"s":"'
        + (ESCAPED + hostile_run.replace(b"\n", b"").replace(b"\r", b"").replace(b"\x00", b""))
        * (8 * MIB // 128)
        + b'"}}',
        "8mib_json_lines": b'{"id":"x","data":{"s":"' + b"\\r\\n\\u001b" * (8 * MIB // 12) + b'"}}',
        "deep_100k_array_in_data": b'{"id":"x","data":{"a":' + deep_array(100_000) + b"}}",
        "deep_100k_object_in_data": b'{"id":"x","data":' + deep_object(100_000) + b"}",
        "deep_100k_top": deep_array(100_000),
        "deep_10000_at_the_limit": b'{"id":"x","data":' + deep_object(9_999) + b"}",
        "deep_10001_over_the_limit": b'{"id":"x","data":' + deep_object(10_000) + b"}",
        "number_1m_digits_in_data": b'{"id":"x","data":{"n":' + b"9" * 1_000_000 + b"}}",
        "number_1m_digit_fraction_in_data": (b'{"id":"x","data":{"n":0.' + b"0" * 999_999 + b"1}}"),
        "number_1m_digits_exponent": b'{"id":"x","data":{"n":1e' + b"9" * 1_000_000 + b"}}",
        "number_1m_digits_as_id": b'{"id":' + b"1" * 1_000_000 + b"}",
        "number_1m_digits_unknown_key": b'{"id":"x","n":' + b"1" * 1_000_000 + b"}",
        "number_1m_digits_top": b"1" * 1_000_000,
        "keys_100k_in_data": b'{"id":"x","data":{'
        + b",".join(b'"k%d":%d' % (i, i) for i in range(100_000))
        + b"}}",
        "keys_100k_same_in_data": b'{"id":"x","data":{'
        + b",".join(b'"k":%d' % i for i in range(100_000))
        + b"}}",
        "keys_100k_case_variants_top": b"{"
        + b",".join(b'"%s":"%d"' % ((b"ID", b"id", b"Id", b"iD")[i % 4], i) for i in range(100_000))
        + b"}",
        "data_100k_times_merged": b'{"id":"x",'
        + b",".join(b'"data":{"k%d":%d}' % (i, i) for i in range(100_000))
        + b"}",
    }


SMALL = small_cases()
BIG_NAMES = list(big_cases())
HOSTILE_SUBJECTS = {
    "plain": (b"events.x", REPLY),
    "escape_subject": (b"events.\x1b[31mred\x00.\xff\xe2\x80\xa8", REPLY),
    "escape_reply": (
        b"events.x",
        b"$JS.ACK.EV\x1b[31mENTS.dur\xff\x00.1.42.42.1736591399987654321.7",
    ),
    "cr_in_subject": (b"events.\r.x", b"_INBOX.\x1b]0;title\x07"),
}


def payload_of(name: str) -> bytes:
    return SMALL[name] if name in SMALL else big_cases()[name]


# -- the checks ----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_hang():
    """A call that never returns ends the run with a traceback instead of hanging it."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def timed(call: Callable[[], object]) -> object:
    started = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - started
    assert elapsed < CALL_LIMIT, f"one call took {elapsed:.1f}s"
    return result


def parse_json(line: str):
    """json.loads, deep enough for Go's 10000 levels."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 30_000))
    try:
        return json.loads(line)
    finally:
        sys.setrecursionlimit(limit)


def check_lines(out: bytes, count: int, layout: int) -> list[str]:
    """One line per message, nothing a terminal or a log shipper could trip on."""
    assert out.endswith(b"\n") and out.count(b"\n") == count, "not one line per message"
    assert b"\r" not in out, "a raw CR inside a line"
    text = out.decode("utf-8")  # invalid input is escaped or replaced, never copied
    plain = text.replace(COLOR_ON, "").replace(COLOR_OFF, "") if layout == 2 else text
    assert "\x1b" not in plain, "an ESC byte that is not the layout's own colour"
    lines = text.split("\n")[:-1]
    if layout == 0:
        assert not JSON_CONTROLS.search(plain.replace("\n", ""))
        for line in lines:
            assert isinstance(parse_json(line), dict)
    else:
        assert not TEXT_CONTROLS.search(plain.replace("\n", "")), "a raw control character"
        for line in lines:
            assert line.count(COLOR_ON) == line.count(COLOR_OFF)
    return lines


def wire(subject: bytes, reply: bytes, payload: bytes) -> bytes:
    return b"MSG %s %d %s %d\r\n" % (subject, SID, reply, len(payload)) + payload + b"\r\n"


def feed_all(module, layout: int, stream: bytes, chunk: int) -> tuple[bytes, bytes, int]:
    path = module.DataPath(SID, layout)
    lines, acks, messages = [], [], 0
    for start in range(0, len(stream), chunk):
        other, out, ack, replies, subjects, count, *_counts, last_chances, statuses = timed(
            lambda s=start: path.feed(stream[s : s + chunk], NOW)
        )
        assert other == b"" and statuses == [] and last_chances == [] and subjects == b""
        assert replies.count(b"\n") == count and ack == module.reply_frames(replies, b"")
        lines.append(out)
        acks.append(ack)
        messages += count
    return b"".join(lines), b"".join(acks), messages


# -- the formatter ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("who", HOSTILE_SUBJECTS)
def test_small_hostile_batch(who, layout) -> None:
    """All the small cases as one batch, with hostile subjects and replies too."""
    subject, reply = HOSTILE_SUBJECTS[who]
    payloads = list(SMALL.values())
    args = ([subject] * len(payloads), [reply] * len(payloads), payloads, NOW, layout)
    out = timed(lambda: compiled.format_batch(*args))
    check_lines(out, len(payloads), layout)
    assert out == pure.format_batch(*args)
    # subjects and replies as str (how nats-py hands them over), invalid bytes as surrogates
    as_str = [s.decode("utf-8", "surrogateescape") for s in (subject, reply)]
    str_args = ([as_str[0]] * len(payloads), [as_str[1]] * len(payloads), payloads, NOW, layout)
    assert compiled.format_batch(*str_args) == out


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("name", BIG_NAMES)
def test_big_hostile_payload(name, layout) -> None:
    """The compiled twin alone: in time, one clean line, the right kind of event."""
    payload = payload_of(name)
    args = (["events.x"], [REPLY], [payload], NOW, layout)
    out = timed(lambda: compiled.format_batch(*args))
    lines = check_lines(out, 1, layout)
    if layout == 0:
        record = parse_json(lines[0])
        structured = record["msg"] == "Received structured event"
        if name.startswith(("deep_100k", "deep_10001")):
            assert not structured, "Go's decoder refuses nesting deeper than 10000"
        if name in ("deep_10000_at_the_limit", "keys_100k_in_data", "data_100k_times_merged"):
            assert structured
        if name in ("keys_100k_in_data", "data_100k_times_merged"):
            assert len(record["event_data"]) == 100_000
        if name == "keys_100k_same_in_data":
            assert record["event_data"] == {"k": 99_999}  # the last duplicate wins


@pytest.mark.slow
@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("name", BIG_NAMES)
def test_big_hostile_payload_same_as_the_pure_twin(name, layout) -> None:
    """The same bytes from the pure twin, however long it takes (up to ~3 s
    for 8 MiB in the text layout; slower on a loaded machine, never skipped)."""
    args = (["events.x"], [REPLY], [payload_of(name)], NOW, layout)
    assert compiled.format_batch(*args) == pure.format_batch(*args)


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize(
    "number",
    [
        b"2e308",
        b"1.8e308",
        b"-9e308",
        b"1.797693159e308",
        b"1e309",
        b"1.797693134862315808e308",  # the first 19 digits above the rounding limit
        # exactly half an ulp above the largest float64 (309 digits): ties to even, overflows
        b"%d" % HALF_ULP_ABOVE_MAX,
    ],
)
def test_numbers_just_above_the_float64_range(number, layout) -> None:
    """Was: a literal of <= 15 characters (2e308) skipped the strtod check and
    an uninitialised Decimal was printed.  Go's ParseFloat overflows: a raw event."""
    payload = b'{"id":"x","data":{"n":%s}}' % number
    args = (["events.x"], [REPLY], [payload], NOW, layout)
    out = compiled.format_batch(*args)
    assert out == pure.format_batch(*args)
    lines = check_lines(out, 1, layout)
    assert "Received raw event" in lines[0]
    if layout == 0:
        assert parse_json(lines[0])["raw_data"] == payload.decode()


ABOVE_FLOAT64_AMONG_OTHERS = textwrap.dedent(
    """
    import random, sys
    sys.path.insert(0, sys.argv[1])
    from events_audit import _formatting, _formatting_py
    from golden_cases import load_golden_cases

    cases = load_golden_cases()
    rng = random.Random(1)
    bad = b'{"id":"x","data":{"n":2e308}}'
    for i in range(2000):
        case = rng.choice(cases)
        _formatting.format_batch([case.subject], [case.reply], [case.payload], 0, i % 3)
        args = (["s"], [""], [bad], 0, i % 3)
        if _formatting.format_batch(*args) != _formatting_py.format_batch(*args):
            sys.exit(f"call {i}: the line differs from the pure twin's")
    print("ok")
    """
)


def test_a_number_above_float64_among_other_events() -> None:
    """Was: the uninitialised Decimal held what earlier calls left on the stack
    (digits of other events in the line, or memcpy of a garbage size: SIGSEGV)."""
    # In a subprocess: the bug crashed the interpreter within a few hundred calls.
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, "-c", ABOVE_FLOAT64_AMONG_OTHERS, tests_dir],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-500:]}"
    assert result.stdout.strip() == "ok"


def test_the_largest_float64_still_works() -> None:
    numbers = (
        b"1.7976931348623157e308",
        b"-1.7976931348623157e308",
        b"1e308",
        b"4.9e-324",
        b"1.7976931348623158e308",  # rounds down to the largest float64
        b"1.797693134862315807e308",
        b"179769313486231580793728971405301e276",
        b"%d" % (HALF_ULP_ABOVE_MAX - 1),  # a hair below the tie: the largest float64
    )
    for number in numbers:
        payload = b'{"id":"x","data":{"n":%s}}' % number
        for layout in LAYOUTS.values():
            args = (["events.x"], [REPLY], [payload], NOW, layout)
            out = compiled.format_batch(*args)
            assert out == pure.format_batch(*args)
            lines = check_lines(out, 1, layout)
            assert "Received structured event" in lines[0], number
            if layout == 0:
                value = parse_json(lines[0])["event_data"]["n"]
                assert value == float(number) and abs(value) != float("inf")


def test_the_same_formatter_after_a_huge_batch() -> None:
    """The cached buffers of a big batch do not leak into the next one."""
    big = compiled.format_batch(["s"], [REPLY], [big_cases()["8mib_every_byte"]], NOW, 0)
    small = compiled.format_batch(["s"], [REPLY], [b'{"id":"after"}'], NOW, 0)
    assert len(big) > 8 * MIB
    assert small == pure.format_batch(["s"], [REPLY], [b'{"id":"after"}'], NOW, 0)


# -- the data path ---------------------------------------------------------------------


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("who", HOSTILE_SUBJECTS)
def test_small_hostile_frames(who, layout) -> None:
    """Every small case as a MSG frame (and one HMSG), fed whole and a byte at a time."""
    subject, reply = HOSTILE_SUBJECTS[who]
    payloads = list(SMALL.values())
    stream = b"".join(wire(subject, reply, p) for p in payloads)
    headers = b"NATS/1.0\r\nX-Evil: \x1b[31m\xff\r\n\r\n"
    stream += b"HMSG %s %d %s %d %d\r\n" % (
        subject,
        SID,
        reply,
        len(headers),
        len(headers) + len(payloads[0]),
    )
    stream += headers + payloads[0] + b"\r\n"
    count = len(payloads) + 1
    want = compiled.format_batch(
        [subject] * count, [reply] * count, [*payloads, payloads[0]], NOW, layout
    )
    for chunk in (len(stream), 1):
        lines, acks, messages = feed_all(compiled_path, layout, stream, chunk)
        assert messages == count and acks.count(b"PUB ") == count
        check_lines(lines, count, layout)
        assert lines == want
    assert feed_all(pure_path, layout, stream, 97)[0] == want


@pytest.mark.parametrize(
    "char", [b"\r", b"\x0b", b"\x0c", b"\x00", b"\xc2\xa0"], ids=["cr", "vt", "ff", "nul", "nbsp"]
)
def test_data_path_twins_split_arguments_alike(char) -> None:
    """Only spaces and tabs separate the arguments, as nats-server writes them
    (was: the pure twin's rest.split() also split on CR, VT and FF)."""
    subject = b"events." + char + b".x"
    stream = wire(subject, REPLY, b"payload") + wire(b"events.y", REPLY, b"next").replace(
        b" %d " % SID, b"\t%d\t" % SID
    )
    want = compiled_path.DataPath(SID, 1, True, True).feed(stream, NOW)
    assert want[5] == 2 and want[4] == subject + b"\nevents.y\n"
    assert pure_path.DataPath(SID, 1, True, True).feed(stream, NOW) == want


@pytest.mark.parametrize("layout", LAYOUTS.values(), ids=LAYOUTS.keys())
@pytest.mark.parametrize("name", BIG_NAMES)
def test_big_hostile_frame(name, layout) -> None:
    """One big frame, whole and in 32 KiB pieces (what nats-py reads at a time)."""
    payload = payload_of(name)
    stream = wire(b"events.x", REPLY, payload) + wire(b"events.y", REPLY, b"next")
    want = compiled.format_batch(
        [b"events.x", b"events.y"], [REPLY, REPLY], [payload, b"next"], NOW, layout
    )
    for chunk in (len(stream), 32 * 1024):
        lines, acks, messages = feed_all(compiled_path, layout, stream, chunk)
        assert messages == 2 and acks == (b"PUB " + REPLY + b" 0\r\n\r\n") * 2
        check_lines(lines, 2, layout)
        assert lines == want


# -- bounded memory ----------------------------------------------------------------------

MEMORY_PROBE = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    import test_hostile_input as t
    from events_audit import _datapath, _formatting

    for name, payload in t.big_cases().items():
        for layout in (0, 1, 2):
            _formatting.format_batch(["events.x"], [t.REPLY], [payload], t.NOW, layout)
            stream = t.wire(b"events.x", t.REPLY, payload)
            for chunk in (len(stream), 32 * 1024):
                path = _datapath.DataPath(t.SID, layout)
                for start in range(0, len(stream), chunk):
                    path.feed(stream[start : start + chunk], t.NOW)
    status = open("/proc/self/status").read()
    print(next(line for line in status.splitlines() if line.startswith("VmHWM")))
    """
)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_big_cases_stay_within_bounded_memory() -> None:
    """Every big case, every layout, formatter and data path, in one fresh
    process: its peak RSS stays under 600 MB."""
    tests_dir = os.path.dirname(os.path.abspath(__file__))
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, tests_dir],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    peak_kb = int(re.search(r"VmHWM:\s+(\d+) kB", result.stdout).group(1))
    assert peak_kb / 1024 < MEMORY_LIMIT_MB, f"peak RSS {peak_kb / 1024:.0f} MB"
