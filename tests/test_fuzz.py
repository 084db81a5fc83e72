"""The fuzzer (tests/fuzz_targets.py) with a short budget, and the bugs it found.

``make fuzz`` runs it for long (FUZZ_RUNS, default 1000000); here it runs
20000 executions with a fixed seed (EVENTS_AUDIT_FUZZ_SEED picks another).
The bugs it found are pinned below: the fixed ones as plain tests of the
fixed behaviour, an open one as a strict xfail (it turns into a failure,
XPASS, once fixed; then the marker and its entry in
fuzz_targets.KNOWN_ISSUES go).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from events_audit import _datapath_py as pure_path

if os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS"):
    pytest.skip("the compiled twins are switched off", allow_module_level=True)

from events_audit import _datapath as compiled_path  # noqa: E402

FUZZER = Path(__file__).with_name("fuzz_targets.py")
SEED = int(os.environ.get("EVENTS_AUDIT_FUZZ_SEED", "20250111"))
SID = 7
REPLY = b"$JS.ACK.EVENTS.d.%d.%d.%d.1736591399987654321.0"


def fuzz(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(FUZZER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_short_fuzz_run_is_clean() -> None:
    result = fuzz("--runs", "20000", "--seed", str(SEED), "--report-every", "60")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    assert "20000 executions, 0 crashes" in result.stdout.splitlines()[-1]
    assert "exec/s" in result.stdout


def test_a_crash_is_caught_and_the_run_goes_on() -> None:
    """A worker killed by SIGSEGV is reported with its input; the rest still runs."""
    result = fuzz("--runs", "60", "--seed", "1", "--crash-at", "25")
    assert result.returncode == 1
    assert "CRASH: the worker died (SIGSEGV) at input 25" in result.stdout
    assert "--start 25 --runs 1" in result.stdout  # how to run it again
    assert result.stdout.splitlines()[-1] == "60 executions, 1 crashes"


def test_an_input_can_be_replayed() -> None:
    result = fuzz("--seed", "1", "--replay", "3")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("input 3 (TZ=") and "no failure" in result.stdout


# -- the bugs the fuzzer found (open ones: fuzz_targets.KNOWN_ISSUES) -------------------------


def msg(subject: bytes, reply: bytes, payload: bytes) -> bytes:
    return b"MSG %s %d %s %d\r\n" % (subject, SID, reply, len(payload)) + payload + b"\r\n"


def status(headers: bytes) -> bytes:
    return b"HMSG _INBOX.x %d %d %d\r\n" % (SID, len(headers), len(headers)) + headers + b"\r\n"


def feed_or_violation(module, stream: bytes, chunk: int | None = None):
    """Everything a fresh path gives back for the stream, fed whole or in
    pieces of `chunk` bytes; "ProtocolViolation" when it refuses it."""
    path = module.DataPath(SID, 0, True, False, 3)
    pieces = (
        [stream] if chunk is None else [stream[i : i + chunk] for i in range(0, len(stream), chunk)]
    )
    results = []
    try:
        for piece in pieces:
            results.append(path.feed(piece, 0))
    except module.ProtocolViolation:
        return "ProtocolViolation"
    return results if chunk is not None else results[0]


LF_FRAMES = {
    "msg-reply": msg(b"e", REPLY % (5, 10, 10) + b"\n" + REPLY % (5, 11, 11), b"the only message"),
    "msg-subject": msg(b"events\n.x", REPLY % (5, 10, 10), b"the only message"),
    "msg-size": b"MSG e 7 r.1 1\n6\r\nthe only message\r\n",
    "msg-sid": b"MSG e 7\n r.1 16\r\nthe only message\r\n",
    "msg-separator": b"MSG e\n7 r.1 16\r\nthe only message\r\n",
    "hmsg-reply": b"HMSG e 7 r.1\nr.2 12 28\r\nNATS/1.0\r\n\r\nthe only message\r\n",
    "hmsg-status": b"HMSG _INBOX.x\n 7 16 16\r\nNATS/1.0 408 x\r\n\r\n\r\n",
}


@pytest.mark.parametrize("name", LF_FRAMES)
def test_a_lone_lf_in_a_control_line_is_a_protocol_violation(name) -> None:
    """Was: the replies kept "\\n"-separated while a lone LF belonged to the
    reply, so settling a failed write read payloads past the last message
    (stale pointers into freed chunks, SIGSEGV).  Now both twins refuse the
    frame, whole or cut anywhere."""
    frame = LF_FRAMES[name]
    for module in (compiled_path, pure_path):
        assert feed_or_violation(module, frame) == "ProtocolViolation", module.__name__
        assert feed_or_violation(module, frame, 1) == "ProtocolViolation", module.__name__


def test_after_a_lone_lf_only_the_new_messages_are_settled() -> None:
    """What the old crash needed: an earlier chunk's payloads, then a reply
    with LFs.  After the ProtocolViolation and reset() nothing of either is
    left: one message, one NAK/TERM frame, its own excerpt."""
    for module in (compiled_path, pure_path):
        path = module.DataPath(SID, 0, True, False, 3)
        first = b"".join(msg(b"e", REPLY % (1, s, s), b"OLD-%d" % s) for s in (1, 2, 3))
        path.feed(bytes(bytearray(first)), 0)  # a chunk freed after the feed
        reply = b"\n".join(REPLY % (5, s, s) for s in (10, 11, 12))  # one reply with two LFs
        with pytest.raises(module.ProtocolViolation):
            path.feed(msg(b"e", reply, b"dropped"), 0)
        path.reset()
        result = path.feed(msg(b"e", REPLY % (5, 13, 13), b"the only message"), 0)
        replies, count, last_chances = result[3], result[5], result[10]
        assert count == 1 and replies == REPLY % (5, 13, 13) + b"\n"
        assert last_chances == [(13, 5, b"the only message")]
        frames = module.settle_frames(replies, 3, b"-NAK")
        assert frames == b"PUB " + REPLY % (5, 13, 13) + b" 5\r\n+TERM\r\n"


def test_status_header_without_crlf() -> None:
    """Was: find_crlf() == -1, a negative length, SystemError."""
    frame = status(b"NATS/1.0 503")
    for module in (compiled_path, pure_path):
        assert feed_or_violation(module, frame) == "ProtocolViolation", module.__name__
    # with its CRLF the same status is fine
    for module in (compiled_path, pure_path):
        got = feed_or_violation(module, status(b"NATS/1.0 503\r\n\r\n"))
        assert got[11] == [(503, "", 0, 0)] and got[5] == 0


@pytest.mark.parametrize(
    "code",
    [b"40x", b"503\xc3\xa9", b"4O4", b"4" * 5000, b"40", b"4040", b"+40", b"-40", b"408\t"],
    ids=["40x", "503e-acute", "4O4", "5000-digits", "two", "four", "plus", "minus", "tab"],
)
def test_status_code_that_is_not_three_digits(code) -> None:
    """Was: int() of the code, ValueError (and the pure twin took some for data)."""
    frame = status(b"NATS/1.0 " + code + b" Oops\r\n\r\n")
    for module in (compiled_path, pure_path):
        assert feed_or_violation(module, frame) == "ProtocolViolation", module.__name__


def test_status_codes_of_three_digits() -> None:
    frame = status(b"NATS/1.0 409  Consumer Deleted\r\n\r\n") + status(b"NATS/1.0 100\r\n\r\n")
    for module in (compiled_path, pure_path):
        statuses = feed_or_violation(module, frame)[11]
        assert statuses == [(409, "Consumer Deleted", 0, 0), (100, "", 0, 0)], module.__name__


PV = "ProtocolViolation"


def pending(value: bytes, key: bytes = b"Nats-Pending-Messages") -> bytes:
    return status(b"NATS/1.0 408 Request Timeout\r\n" + key + b": " + value + b"\r\n\r\n")


MALFORMED = {
    "sid-7x": (msg(b"e", REPLY % (1, 1, 1), b"x").replace(b" 7 ", b" 7x "), PV),
    "sid-13-digits": (b"MSG e 0000000000007 r 1\r\nx\r\n", PV),
    "sid-12-digits": (b"MSG e 000000000007 r 1\r\nx\r\n", "message"),
    "sid-plus": (b"MSG e +7 r 1\r\nx\r\n", PV),
    "size-plus-1": (msg(b"e", REPLY % (1, 1, 1), b"x").replace(b" 1\r\n", b" +1\r\n"), PV),
    "size-underscore": (b"MSG e 7 r 1_0\r\n0123456789\r\n", PV),
    "size-13-digits": (b"MSG e 7 r 0000000000001\r\nx\r\n", PV),
    "size-arabic-indic": (b"MSG e 7 r \xd9\xa1\r\nx\r\n", PV),
    "header-above-total": (b"HMSG _INBOX.x 7 33 3\r\nabc\r\n" + b"x" * 40 + b"\r\n", PV),
    "too-many-args": (b"MSG e 7 r extra 1\r\nx\r\n", PV),
    "bare-msg-space": (b"MSG \r\n", PV),
    "bare-hmsg": (b"HMSG\r\n", "other"),  # not a frame of ours: nats-py's parser judges it
    "msg-tab": (b"MSG\te 7 1\r\nx\r\n", "other"),
    "pending-tab": (pending(b"5\t"), (408, "Request Timeout", 0, 0)),
    "pending-spaces": (pending(b" 5  "), (408, "Request Timeout", 5, 0)),
    "pending-sign": (pending(b"+5"), (408, "Request Timeout", 0, 0)),
    "pending-twice": (
        status(
            b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 5\r\n"
            b"Nats-Pending-Messages: 6\r\n\r\n"
        ),
        (408, "Request Timeout", 5, 0),  # the first one counts
    ),
    "pending-18-digits": (
        pending(b"9" * 18, b"Nats-Pending-Bytes"),
        (408, "Request Timeout", 0, 10**18 - 1),
    ),
    "pending-19-digits": (
        pending(b"9" * 19, b"Nats-Pending-Bytes"),
        (408, "Request Timeout", 0, 0),
    ),
    "pending-5000-digits": (
        pending(b"9" * 5000, b"Nats-Pending-Bytes"),
        (408, "Request Timeout", 0, 0),
    ),
}


@pytest.mark.parametrize("name", MALFORMED)
def test_twins_agree_on_malformed_frames(name) -> None:
    """Frames only a broken or hostile server sends: both twins read them the
    same way, whole and a byte at a time."""
    stream, want = MALFORMED[name]
    got = feed_or_violation(compiled_path, stream)
    assert got == feed_or_violation(pure_path, stream)
    assert feed_or_violation(compiled_path, stream, 1) == feed_or_violation(pure_path, stream, 1)
    if want == PV:
        assert got == PV
    elif want == "other":
        assert got[0] == stream and got[5] == 0
    elif want == "message":
        assert got[5] == 1 and got[0] == b""
    else:
        assert got[11] == [want] and got[5] == 0


def test_processed_lines_refuses_none() -> None:
    result = compiled_path.DataPath(SID, 0, True, True).feed(msg(b"e", REPLY % (1, 1, 1), b"x"), 0)
    with pytest.raises(TypeError):
        compiled_path.processed_lines(0, result[4], result[3], None, 0)


def test_processed_lines_refuses_other_types() -> None:
    result = compiled_path.DataPath(SID, 0, True, True).feed(msg(b"e", REPLY % (1, 1, 1), b"x"), 0)
    for elapsed in (b"1ms", 1.5, object()):
        with pytest.raises(TypeError):
            compiled_path.processed_lines(0, result[4], result[3], elapsed, 0)
    assert compiled_path.processed_lines(0, result[4], result[3], "1ms", 0).count(b"\n") == 1


BAD_BYTES = (None, "text", 1, bytearray(b"x"), memoryview(b"x"))


@pytest.mark.parametrize("module", [compiled_path, pure_path], ids=["compiled", "pure"])
def test_frame_builders_take_bytes_only(module) -> None:
    """Both twins refuse what is not bytes alike (the compiled one once read
    a None as a buffer)."""
    replies = REPLY % (1, 1, 1) + b"\n"
    for bad in BAD_BYTES:
        with pytest.raises(TypeError):
            module.reply_frames(bad, b"+WPI")
        with pytest.raises(TypeError):
            module.reply_frames(replies, bad)
        with pytest.raises(TypeError):
            module.settle_frames(bad, 2, b"-NAK")
        with pytest.raises(TypeError):
            module.settle_frames(replies, 2, bad)
        with pytest.raises(TypeError):
            module.processed_lines(0, bad, replies, "1ms", 0)
        with pytest.raises(TypeError):
            module.processed_lines(0, b"e\n", bad, "1ms", 0)
    for bad in (None, "2", 2.5):
        with pytest.raises(TypeError):
            module.settle_frames(replies, bad, b"-NAK")
    assert module.reply_frames(replies, b"+WPI") == b"PUB " + replies[:-1] + b" 4\r\n+WPI\r\n"
