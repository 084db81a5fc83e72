"""A mutation fuzzer for the compiled entry points: ``format_batch`` and the data path.

    python tests/fuzz_targets.py --runs 1000000 [--seed S] [--check-every K]
    python tests/fuzz_targets.py --seed S --replay INDEX    # one input, verbose

Inputs are mutations of the golden payloads, subjects and replies
(tests/golden/cases.jsonl), generated events and random bytes: batches for
``events_audit._formatting.format_batch``; NATS byte streams (MSG, HMSG,
status frames, other frames, malformed control lines, garbage) cut into
random chunks for ``events_audit._datapath.DataPath.feed``, each chunk's
replies and subjects then going through ``reply_frames``, ``settle_frames``
and ``processed_lines``; and malformed arguments.  Checks on every execution:

* no exception, except ``ProtocolViolation`` for a stream that is not the
  NATS protocol, and ValueError/TypeError (or OverflowError for an integer
  beyond its C type) for malformed arguments;
* one line per message (two with debug lines), every JSON line parses, the
  output is UTF-8 with no raw CR or control character and no ESC byte but
  the coloured layout's own colour codes;
* a feed's results agree with each other: one ack, one reply line (and at
  debug level one subject line) per message, the acks are
  ``reply_frames(replies, b"")``, one +WPI, NAK or TERM frame per message and
  a TERM exactly for each last chance, excerpts of at most 256 bytes;
* every K-th execution the pure twins (``_formatting_py``, ``_datapath_py``)
  give the same bytes.

Input ``i`` is generated from ``random.Random`` seeded with (seed, i) alone,
so any input can be replayed.  The executions run in a worker subprocess: a
crash (a signal such as SIGSEGV) or a hang is caught by this process, which
names the input and restarts the worker after it.  Exit status 0 when no
execution failed (known issues, listed in ``KNOWN_ISSUES``, are counted and
shown, not failed on, unless --strict).
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # golden_cases

SID = 7
ALLOWED_ESCAPES = re.compile(rb"\x1b\[(?:3[1-7]|0)m")  # the layouts' level colours and reset
TEXT_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
JSON_CONTROLS = re.compile(r"[\x00-\x09\x0b-\x1f\u2028\u2029]")
INT64 = (-(2**63), 2**63 - 1)
EXCERPT_BYTES = 256
ELAPSED = "12.5µs"


class Failure(Exception):
    """A check failed."""


# -- known issues -------------------------------------------------------------------------
#
# Bugs this fuzzer found and that are still open, each pinned by a strict
# xfail in tests/test_fuzz.py.  A failure one of them explains is counted
# apart and does not fail the run (unless --strict).  Remove an entry once its
# bug is fixed (its xfail then XPASSes).
#
# Fixed, and now checked like everything else: numbers just above float64's
# range (2e308) taken as valid, a lone LF in a MSG/HMSG control line, a status
# header without CRLF, status codes that are not three digits, the pure twin
# splitting control lines on CR/VT/FF, the twins reading malformed sids,
# sizes and Nats-Pending-* values differently.


KNOWN_ISSUES: dict = {}  # none open: every fixed one became a test in test_fuzz.py
ISSUE_NAMES = list(KNOWN_ISSUES)

# What the worker keeps for the supervisor in a small file-backed mmap, so it
# survives a crash: the input being executed, the executions done, the
# failures, and how often each known issue was hit.
STATE = struct.Struct("<qqq" + "q" * len(ISSUE_NAMES))

# -- the corpus ------------------------------------------------------------------------------


@dataclass
class Corpus:
    payloads: list[bytes]
    subjects: list[str]
    replies: list[str]
    now_ns: list[int]
    zones: list[str]


def load_corpus() -> Corpus:
    from golden_cases import load_golden_cases

    cases = load_golden_cases()
    return Corpus(
        payloads=sorted({c.payload for c in cases}),
        subjects=sorted({c.subject for c in cases}),
        replies=sorted({c.reply for c in cases}),
        now_ns=sorted({c.now_ns for c in cases}),
        zones=sorted({c.tz for c in cases}),
    )


TOKENS = [
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b":",
    b",",
    b"\\",
    b" ",
    b"\t",
    b"\\u0000",
    b"\\ud800",
    b"\\udc00",
    b"\\ud83d\\ude00",
    b"\\u2028",
    b"\\u001b[31m",
    b"\\r\\n",
    b"\x1b[31m",
    b"\x1b]0;x\x07",
    b"\x00",
    b"\r",
    b"\n",
    b"\r\n",
    b"\x7f",
    b"\xff",
    b"\xc0\x80",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    "\u2028".encode(),
    "\u0085".encode(),
    "\u009b".encode(),
    "é".encode(),
    "😀".encode(),
    b"null",
    b"true",
    b"false",
    b"0",
    b"-0",
    b"1e400",
    b"-1e400",
    b"1e-400",
    b"0.1",
    b"1E+2",
    b"4.9e-324",
    b"1.7976931348623157e308",
    b"1.7976931348623159e308",
    b"-1.8e308",
    b"1.8e308",
    b"2e308",
    b"1.7976931348623158e308",
    b"1.797693134862315808e308",
    b"1e308",
    b"2.2250738585072014e-308",
    b"2.4703282292062327e-324",
    b"2.4703282292062328e-324",
    b"9007199254740993",
    b"0.000001",
    b"1e21",
    b"1e20",
    b"18446744073709551616",
    b"123456789012345678901234567890",
    b'"id":',
    b'"ID":',
    b'"iD":',
    '"ſource":'.encode(),
    '"\u212aey":'.encode(),
    b'"type":',
    b'"source":',
    b'"timestamp":',
    b'"data":',
    b'"data":{}',
    b'"data":null',
    b'"data":[]',
    b'"2025-01-11T10:30:00Z"',
    b'"2025-01-11T10:30:00.123456789+05:30"',
    b'"0000-01-01T00:00:00-23:59"',
    b'"9999-12-31T23:59:60.999999999Z"',
]

KEYS = ["id", "ID", "Id", "type", "TYPE", "source", "ſource", "timestamp", "data", "DATA", "x"]
STRINGS = [
    "",
    "a",
    "evt-1",
    "\x1b[31mred\x1b[0m",
    "line\r\nbreak",
    "nul\x00",
    "\u2028\u2029",
    "\u0085\u009b",
    "é😀",
    "\ud800",
    "\\",
    '"',
    "2025-01-11T10:30:00Z",
    "2025-02-29T10:30:00+01:00",
    "1999-12-31T23:59:59.999999999-23:59",
]


def gen_value(rng: random.Random, depth: int) -> object:
    roll = rng.random()
    if depth <= 0 or roll < 0.45:
        return rng.choice(
            [
                rng.choice(STRINGS),
                rng.randint(-(2**70), 2**70),
                rng.random() * 10.0 ** rng.randint(-320, 307),
                None,
                True,
                False,
                rng.choice(STRINGS) + rng.choice(STRINGS),
            ]
        )
    if roll < 0.75:
        return {
            rng.choice(KEYS + STRINGS): gen_value(rng, depth - 1) for _ in range(rng.randint(0, 4))
        }
    return [gen_value(rng, depth - 1) for _ in range(rng.randint(0, 4))]


def gen_event(rng: random.Random) -> bytes:
    members = []
    for _ in range(rng.randint(0, 7)):
        key = rng.choice(KEYS)
        if key.lower() in ("data",) and rng.random() < 0.8:
            value = {
                rng.choice(KEYS + STRINGS): gen_value(rng, 3) for _ in range(rng.randint(0, 5))
            }
        elif key.lower() in ("id", "type", "source", "timestamp", "ſource") and rng.random() < 0.8:
            value = rng.choice(STRINGS)
        else:
            value = gen_value(rng, 3)
        members.append(json.dumps(key, ensure_ascii=rng.random() < 0.5) + ":" + _dump(value, rng))
    text = "{" + ",".join(members) + "}"
    return text.encode("utf-8", "surrogatepass")


def _dump(value: object, rng: random.Random) -> str:
    try:
        return json.dumps(value, ensure_ascii=rng.random() < 0.5, allow_nan=False)
    except ValueError:
        return "1e999"


def mutate(rng: random.Random, data: bytes, corpus: Corpus, rounds: int | None = None) -> bytes:
    buf = bytearray(data)
    for _ in range(rounds or rng.choice((1, 1, 1, 2, 2, 3, 5, 8))):
        pos = rng.randint(0, len(buf))
        op = rng.randrange(11)
        if op == 0 and buf:
            buf[min(pos, len(buf) - 1)] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:
            buf[min(pos, len(buf) - 1)] = rng.randrange(256)
        elif op == 2:
            buf[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        elif op == 3 and buf:
            del buf[pos : pos + rng.randint(1, 16)]
        elif op in (4, 5):
            buf[pos:pos] = rng.choice(TOKENS)
        elif op == 6 and buf:
            start = rng.randrange(len(buf))
            buf[pos:pos] = buf[start : start + rng.randint(1, 32)] * rng.randint(1, 4)
        elif op == 7:
            other = rng.choice(corpus.payloads)
            buf[pos:] = other[rng.randint(0, len(other)) :]
        elif op == 8:
            del buf[pos:]
        elif op == 9 and rng.random() < 0.2:
            run = rng.choice((b"[", b'{"a":', b"9", b"0", b"\\u00e9", b" ", b"\xff"))
            buf[pos:pos] = run * rng.choice((2, 10, 100, 1000, 10001))
        elif op == 10:
            buf[pos:pos] = chr(
                rng.choice(
                    (
                        rng.randrange(0x80, 0x800),
                        rng.randrange(0x800, 0x10000),
                        rng.randrange(0x10000, 0x110000),
                    )
                )
            ).encode("utf-8", "surrogatepass")
    return bytes(buf)


def gen_payload(rng: random.Random, corpus: Corpus) -> bytes:
    roll = rng.random()
    if roll < 0.15:
        return rng.choice(corpus.payloads)
    if roll < 0.60:
        return mutate(rng, rng.choice(corpus.payloads), corpus)
    if roll < 0.75:
        return gen_event(rng)
    if roll < 0.90:
        return mutate(rng, gen_event(rng), corpus)
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))


def gen_reply(rng: random.Random, corpus: Corpus) -> bytes:
    roll = rng.random()
    if roll < 0.55:
        return rng.choice(corpus.replies).encode("utf-8", "surrogateescape")
    if roll < 0.75:
        return mutate(rng, rng.choice(corpus.replies).encode(), corpus, rounds=1)
    if roll < 0.85:
        return b""
    tokens = ["$JS", "ACK"]
    if rng.random() < 0.5:
        tokens += ["domain", "hash"]
    tokens += ["EVENTS", "durable"]
    numbers = [
        rng.choice((0, 1, 2, rng.randrange(2**64), 2**64, -1, 10**30))
        for _ in range(rng.choice((4, 5, 6)))
    ]
    tokens += [str(n) for n in numbers]
    if rng.random() < 0.3:
        tokens.append("token")
    return ".".join(tokens).encode()


def gen_subject(rng: random.Random, corpus: Corpus) -> bytes:
    roll = rng.random()
    if roll < 0.7:
        return rng.choice(corpus.subjects).encode("utf-8", "surrogateescape")
    if roll < 0.9:
        return mutate(
            rng, rng.choice(corpus.subjects).encode("utf-8", "surrogateescape"), corpus, 1
        )
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 16)))


def gen_now(rng: random.Random, corpus: Corpus) -> int:
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(corpus.now_ns)
    if roll < 0.9:
        return rng.randint(-(10**18), 10**19 // 2)
    return rng.choice((INT64[0], INT64[1], 0, -1, 1))


# -- the inputs ---------------------------------------------------------------------------


@dataclass
class Case:
    kind: str  # "format", "feed" or "bad"
    compare: bool
    layout: int = 0
    now_ns: int = 0
    subjects: list = field(default_factory=list)
    replies: list = field(default_factory=list)
    payloads: list = field(default_factory=list)
    chunks: list = field(default_factory=list)
    events: bool = True
    debug: bool = False
    max_deliver: int = 3
    nak: bytes = b"-NAK"
    call: tuple = ()

    def stream(self) -> bytes:
        return b"".join(self.chunks)


def as_text(rng: random.Random, value: bytes) -> str | bytes:
    """nats-py hands subjects and replies over as str (invalid bytes as surrogates)."""
    return value.decode("utf-8", "surrogateescape") if rng.random() < 0.5 else value


def status_frame(rng: random.Random) -> bytes:
    code, text = rng.choice(
        [
            (100, "Idle Heartbeat"),
            (404, "No Messages"),
            (408, "Request Timeout"),
            (409, "Exceeded MaxWaiting"),
            (409, "Leadership Change"),
            (409, "Consumer Deleted"),
            (503, ""),
        ]
    )
    headers = b"NATS/1.0 %d %s\r\n" % (code, text.encode())
    if rng.random() < 0.5:
        headers += b"Nats-Pending-Messages: %d\r\nNats-Pending-Bytes: %d\r\n" % (
            rng.randrange(10**6),
            rng.randrange(10**9),
        )
    headers += b"\r\n"
    if rng.random() < 0.15:
        headers = mutate(rng, headers, Corpus([b""], [], [], [], []), 1)
    return b"HMSG _INBOX.x %d %d %d\r\n" % (SID, len(headers), len(headers)) + headers + b"\r\n"


def gen_frame(rng: random.Random, corpus: Corpus) -> bytes:
    roll = rng.random()
    subject = re.sub(rb"[ \t\r\n]", b"", gen_subject(rng, corpus)) or b"e"
    if roll < 0.50:
        reply = re.sub(rb"[ \t\r\n]", b"", gen_reply(rng, corpus))
        payload = gen_payload(rng, corpus)
        head = b"MSG %s %d %s%d\r\n" % (subject, SID, reply + b" " if reply else b"", len(payload))
        return head + payload + b"\r\n"
    if roll < 0.62:
        reply = re.sub(rb"[ \t\r\n]", b"", gen_reply(rng, corpus)) or b"r"
        payload = gen_payload(rng, corpus)
        headers = b"NATS/1.0\r\nNats-Msg-Id: %d\r\n\r\n" % rng.randrange(100)
        if rng.random() < 0.2:
            headers = b"NATS/1.0 " + headers[9:]  # a status without a code: refused
        return (
            b"HMSG %s %d %s %d %d\r\n"
            % (subject, SID, reply, len(headers), len(headers) + len(payload))
            + headers
            + payload
            + b"\r\n"
        )
    if roll < 0.75:
        return status_frame(rng)
    if roll < 0.85:
        payload = gen_payload(rng, corpus)
        return (
            b"MSG %s %d %d\r\n" % (subject, SID + 1 + rng.randrange(3), len(payload))
            + payload
            + b"\r\n"
        )
    if roll < 0.93:
        return rng.choice(
            [
                b"PING\r\n",
                b"PONG\r\n",
                b"+OK\r\n",
                b"-ERR 'Stale Connection'\r\n",
                b'INFO {"x":1}\r\n',
            ]
        )
    if roll < 0.98:
        return malformed_frame(rng, corpus)
    return bytes(rng.randrange(256) for _ in range(rng.randint(0, 20))) + b"\r\n"


ODD_BYTES = [b"\n", b"\r", b"\x0b", b"\x0c", b"\x00", b"\t", b"  ", b"\xff", b"\xc2\xa0"]
ODD_NUMBERS = [b"+", b"-", b"0", b"00000000000", b"_", b"0x", b"9" * 12, "\u0667".encode(), b"\xff"]
ODD_CODES = [
    b"",
    b"40",
    b"4040",
    b"40x",
    b"4O4",
    b"+40",
    b" 408",
    b"408\t",
    b"408\xc2\xa0",
    b"9" * 40,
]
ODD_PENDING = [b"", b"5\t", b" 5 ", b"+5", b"-5", b"5 5", b"9" * 18, b"9" * 19, b"0" * 30 + b"7"]


def malformed_frame(rng: random.Random, corpus: Corpus) -> bytes:
    """A frame of our subscription that nats-server would not write: an odd byte
    or number in its control line, a header size above the total, a bare verb,
    a status with an odd code or Nats-Pending-* value, or without CRLF."""
    payload = gen_payload(rng, corpus) if rng.random() < 0.5 else b"x"
    reply = rng.choice(corpus.replies).encode("utf-8", "surrogateescape") or b"r"
    args = [b"e.x", b"%d" % SID, reply, b"%d" % len(payload)]
    roll = rng.randrange(6)
    if roll == 0:  # an odd byte inside or between the arguments
        i = rng.randrange(len(args))
        at = rng.randint(0, len(args[i]))
        args[i] = args[i][:at] + rng.choice(ODD_BYTES) + args[i][at:]
    elif roll == 1:  # a sid or size written as no server writes numbers
        i = rng.choice((1, 3))
        odd = rng.choice(ODD_NUMBERS)
        args[i] = odd + args[i] if rng.random() < 0.5 else args[i] + odd
    elif roll == 2:  # HMSG with a header size above, at or below the total
        header_size = len(payload) + rng.choice((-1, 0, 1, 1000))
        line = b"HMSG %s %d %s %d %d\r\n" % (
            args[0],
            SID,
            reply,
            max(header_size, 0),
            len(payload),
        )
        return line + payload + b"\r\n"
    elif roll in (3, 4):  # a status frame with an odd code or pending count
        code = rng.choice(ODD_CODES) if roll == 3 else b"408"
        headers = b"NATS/1.0 " + code + rng.choice((b"", b" Request Timeout"))
        if rng.random() < 0.8:
            headers += b"\r\n"  # else: a status line without CRLF
            if roll == 4:
                key = rng.choice((b"Nats-Pending-Messages", b"Nats-Pending-Bytes"))
                for _ in range(rng.choice((1, 1, 2))):
                    headers += key + b":" + rng.choice(ODD_PENDING) + b"\r\n"
            headers += b"\r\n"
        return b"HMSG _INBOX.x %d %d %d\r\n" % (SID, len(headers), len(headers)) + headers + b"\r\n"
    else:  # a bare verb, or one in another case or with another separator
        return rng.choice([b"MSG", b"HMSG", b"MSG ", b"HMSG \t", b"msg e 7 1", b"MSG\te 7 1"]) + (
            b"\r\nx\r\n"
        )
    return b"MSG " + b" ".join(args) + b"\r\n" + payload + b"\r\n"


def cut(rng: random.Random, stream: bytes) -> list[bytes]:
    if len(stream) < 300 and rng.random() < 0.1:
        return [stream[i : i + 1] for i in range(len(stream))] or [b""]
    points = sorted({rng.randint(0, len(stream)) for _ in range(rng.choice((0, 1, 1, 2, 3, 5)))})
    return [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]


class Odd:
    """An object that is neither str nor bytes, for the argument checks."""


BAD_VALUES = [None, 1, 1.5, "str", Odd(), [b"x"], object(), 2**70, -(2**70)]
REPLIES = b"$JS.ACK.EVENTS.d.3.1.1.1736591399987654321.0\n_INBOX.x\n\n"


def gen_bad(rng: random.Random) -> tuple:
    good = (["s"], [""], [b"x"], 0, 0)
    roll = rng.random()
    if roll < 0.6:
        args = list(good)
        args[rng.randrange(5)] = rng.choice(BAD_VALUES + [[rng.choice(BAD_VALUES)]])
        if rng.random() < 0.3:
            args[rng.randrange(3)] = [b"a", b"b"]  # lengths differ
        return ("format_batch", tuple(args))
    if roll < 0.75:
        args = [SID, 0, True, False, -1]
        args[rng.randrange(5)] = rng.choice([3, -1, 2**31, *BAD_VALUES])
        return ("DataPath", tuple(args[: rng.randint(2, 5)]))
    method = rng.choice(["feed", "reply_frames", "settle_frames", "processed_lines"])
    value = rng.choice(BAD_VALUES)
    args = {
        "feed": [b"PING\r\n", 0],
        "reply_frames": [REPLIES, b"+WPI"],
        "settle_frames": [REPLIES, 3, b"-NAK"],
        "processed_lines": [0, b"e\n", REPLIES, "1ms", 0],
    }[method]
    args[rng.randrange(len(args))] = value
    return (method, tuple(args))


def generate(seed: int, index: int, corpus: Corpus, check_every: int) -> Case:
    rng = random.Random(seed * 10_000_019 + index)
    compare = index % check_every == 0
    roll = rng.random()
    if roll < 0.55:
        size = rng.choice((1, 1, 1, 2, 3, 4))
        return Case(
            "format",
            compare,
            layout=rng.randrange(3),
            now_ns=gen_now(rng, corpus),
            subjects=[as_text(rng, gen_subject(rng, corpus)) for _ in range(size)],
            replies=[as_text(rng, gen_reply(rng, corpus)) for _ in range(size)],
            payloads=[gen_payload(rng, corpus) for _ in range(size)],
        )
    if roll < 0.97:
        stream = b"".join(gen_frame(rng, corpus) for _ in range(rng.randint(1, 6)))
        if rng.random() < 0.2:
            stream = mutate(rng, stream, corpus, rounds=rng.randint(1, 3))
        return Case(
            "feed",
            compare,
            layout=rng.randrange(3),
            now_ns=gen_now(rng, corpus),
            chunks=cut(rng, stream),
            events=rng.random() < 0.9,
            debug=rng.random() < 0.2,
            max_deliver=rng.choice((-1, 0, 1, 2, 3, 100)),
            nak=rng.choice((b"-NAK", b'-NAK {"delay":1000000000}', b"")),
        )
    return Case("bad", False, call=gen_bad(rng))


# -- the checks ---------------------------------------------------------------------------


def check_lines(out: bytes, lines_expected: int, layout: int) -> None:
    if not isinstance(out, bytes):
        raise Failure(f"lines are {type(out).__name__}, not bytes")
    count = out.count(b"\n")
    if count != lines_expected or (lines_expected and not out.endswith(b"\n")):
        raise Failure(f"{count} lines for {lines_expected} expected")
    if b"\r" in out:
        raise Failure("a raw CR in the output")
    if b"\x1b" in ALLOWED_ESCAPES.sub(b"", out) or (layout != 2 and b"\x1b" in out):
        raise Failure("an ESC byte that is not a colour code of the layout")
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Failure(f"the output is not UTF-8: {exc}") from None
    body = text.replace("\n", "")
    if layout == 0:
        if JSON_CONTROLS.search(body):
            raise Failure("a raw control character in a JSON line")
        for line in text.split("\n")[:-1]:
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise Failure(f"a JSON line does not parse: {exc}: {line[:200]!r}") from None
            if not isinstance(record, dict):
                raise Failure("a JSON line is not an object")
    elif TEXT_CONTROLS.search(ALLOWED_ESCAPES.sub(b"", out).decode("utf-8").replace("\n", "")):
        raise Failure("a raw control character in a text line")


def run_format(module, case: Case, check: bool) -> bytes:
    out = module.format_batch(case.subjects, case.replies, case.payloads, case.now_ns, case.layout)
    if check:
        check_lines(out, len(case.payloads), case.layout)
    return out


def run_feed(path_module, case: Case, check: bool) -> list:
    """Every result of feeding the chunks, with the frames and debug lines made
    of each chunk's replies and subjects; ('PV',) for a ProtocolViolation, after
    which the path is reset and fed a clean frame."""
    path = path_module.DataPath(SID, case.layout, case.events, case.debug, case.max_deliver)
    results: list = []
    for chunk in case.chunks:
        try:
            result = path.feed(chunk, case.now_ns)
        except path_module.ProtocolViolation:
            results.append(("PV",))
            path.reset()
            clean = b"MSG e %d r.1 2\r\nok\r\n" % SID
            again = path.feed(clean, case.now_ns)
            if check and (again[3] != b"r.1\n" or again[5] != 1):
                raise Failure(f"the data path did not recover after reset(): {again!r}") from None
            results.append(again)
            break
        replies, subjects = result[3], result[4]
        wpi = path_module.reply_frames(replies, b"+WPI")
        settled = path_module.settle_frames(replies, case.max_deliver, case.nak)
        processed = path_module.processed_lines(
            case.layout, subjects, replies, ELAPSED, case.now_ns
        )
        if check:
            check_feed(path_module, case, result, wpi, settled, processed)
        results.append((*result, wpi, settled, processed))
    return results


def check_feed(path_module, case: Case, result: tuple, wpi: bytes, settled: bytes, processed):
    """The results of one feed agree with each other and with the frames made of them."""
    if not (isinstance(result, tuple) and len(result) == 12):
        raise Failure(f"feed() gave {type(result).__name__} of {len(result)}, not 12 items")
    _other, lines, acks, replies, subjects, messages, structured, redelivered = result[:8]
    max_sequence, min_sequence, last_chances, statuses = result[8:]
    for name, value in zip(("other", "lines", "acks", "replies", "subjects"), result, strict=False):
        if not isinstance(value, bytes):
            raise Failure(f"{name} is {type(value).__name__}, not bytes")
    acked = acks.count(b"PUB ")
    if acked != messages or not 0 <= structured <= messages:
        raise Failure(f"{messages} messages, {acked} acks, {structured} structured")
    if not 0 <= redelivered <= messages:
        raise Failure(f"{redelivered} redelivered of {messages}")
    debug = case.debug and case.events
    for name, blob, want in (("reply", replies, messages), ("subject", subjects, messages * debug)):
        count = blob.count(b"\n")
        if count != want or (blob and not blob.endswith(b"\n")):
            raise Failure(f"{count} {name} lines for {want} expected")
    if acks != path_module.reply_frames(replies, b""):
        raise Failure("the acks are not one PUB with an empty payload to each reply")
    per_message = (1 + debug) if case.events else 0
    check_lines(lines, messages * per_message, case.layout)
    check_lines(processed, messages if debug else 0, case.layout)
    if wpi.count(b" 4\r\n+WPI\r\n") != messages or wpi.count(b"PUB ") != messages:
        raise Failure(f"{wpi.count(b'PUB ')} in-progress frames for {messages} messages")
    if settled.count(b"PUB ") != messages:
        raise Failure(f"{settled.count(b'PUB ')} NAK/TERM frames for {messages} messages")
    if not (isinstance(max_sequence, int) and 0 <= max_sequence < 2**64):
        raise Failure(f"max sequence {max_sequence!r}")
    if messages == 0 and max_sequence:
        raise Failure(f"max sequence {max_sequence} without messages")
    if not (isinstance(min_sequence, int) and 0 <= min_sequence <= max_sequence):
        raise Failure(f"min sequence {min_sequence!r} with max {max_sequence}")
    if not isinstance(last_chances, list) or len(last_chances) > messages:
        raise Failure(f"last chances {last_chances!r} of {messages} messages")
    if case.max_deliver <= 0 and last_chances:
        raise Failure(f"last chances without --audit-max-deliver: {last_chances!r}")
    for chance in last_chances:
        if not (
            isinstance(chance, tuple)
            and len(chance) == 3
            and isinstance(chance[2], bytes)
            and len(chance[2]) <= EXCERPT_BYTES
            and 0 <= chance[0] <= max_sequence
            and chance[1] >= case.max_deliver
        ):
            raise Failure(f"a last chance is {chance!r}")
    termed = settled.count(b" 5\r\n+TERM\r\n")
    if termed != len(last_chances):
        raise Failure(f"{termed} TERM frames for {len(last_chances)} last chances")
    if not isinstance(statuses, list):
        raise Failure(f"statuses are {statuses!r}")
    for status in statuses:
        if not (
            isinstance(status, tuple)
            and len(status) == 4
            and 0 <= status[0] <= 999
            and isinstance(status[1], str)
            and all(0 <= n < 10**18 for n in status[2:])
        ):
            raise Failure(f"a status is {status!r}")


def run_bad(modules, case: Case) -> None:
    formatting, datapath = modules
    name, args = case.call
    try:
        if name == "format_batch":
            formatting.format_batch(*args)
        elif name == "DataPath":
            datapath.DataPath(*args)
        elif name == "feed":
            path = datapath.DataPath(SID, 0)
            path.feed(b"MSG e 7 r.1 1\r\nx\r\n", 0)
            path.feed(*args)
        else:
            getattr(datapath, name)(*args)
    except (ValueError, TypeError):
        pass
    except OverflowError:
        pass  # an integer beyond its C type (now_ns, layout, sid, max_deliver)


def execute(case: Case, compiled: tuple, pure: tuple) -> None:
    """Run one input on the compiled twin, check it, compare with the pure twin."""
    if case.kind == "format":
        out = run_format(compiled[0], case, True)
        if case.compare and out != run_format(pure[0], case, False):
            raise Failure("mismatch: format_batch differs from the pure twin")
    elif case.kind == "feed":
        got = run_feed(compiled[1], case, True)
        if case.compare:
            want = run_feed(pure[1], case, False)
            if got != want:
                raise Failure(
                    f"mismatch: DataPath differs from the pure twin: {_first_difference(got, want)}"
                )
    else:
        run_bad(compiled, case)


def _first_difference(got: list, want: list) -> str:
    for i, (a, b) in enumerate(zip(got, want, strict=False)):
        if a != b:
            return f"result {i}: compiled {repr(a)[:300]} pure {repr(b)[:300]}"
    return f"{len(got)} results against {len(want)}"


# -- the worker and the supervisor -------------------------------------------------------------


def classify(kind: str, detail: str, case: Case) -> str | None:
    for name, matches in KNOWN_ISSUES.items():
        try:
            if matches(kind, detail, case):
                return name
        except Exception as exc:  # noqa: BLE001 - the harness must not die of its own bug
            print(f"classifier {name} failed: {exc!r}", flush=True)
    return None


def set_zone(corpus: Corpus, index: int) -> None:
    zone = corpus.zones[(index // 4096) % len(corpus.zones)]
    if os.environ.get("TZ") != zone:
        os.environ["TZ"] = zone
        time.tzset()


def modules() -> tuple[tuple, tuple]:
    from events_audit import _datapath, _datapath_py, _formatting, _formatting_py

    return (_formatting, _datapath), (_formatting_py, _datapath_py)


def worker(args: argparse.Namespace) -> int:
    sys.setrecursionlimit(100_000)  # JSON lines nest as deep as Go allows (10000)
    corpus = load_corpus()
    compiled, pure = modules()
    fd = os.open(args.worker_state, os.O_RDWR)
    state = mmap.mmap(fd, STATE.size)
    failures = 0
    known = [0] * len(ISSUE_NAMES)
    started = last_report = time.monotonic()
    end = args.start + args.runs
    for index in range(args.start, end):
        case = generate(args.seed, index, corpus, args.check_every)
        set_zone(corpus, index)
        STATE.pack_into(state, 0, index, index - args.start, failures, *known)
        if index == args.crash_at:  # the supervisor's own test
            os.kill(os.getpid(), signal.SIGSEGV)
        try:
            execute(case, compiled, pure)
        except Failure as exc:
            kind, detail = ("mismatch" if str(exc).startswith("mismatch") else "check"), str(exc)
        except Exception as exc:  # noqa: BLE001 - any other exception is a finding
            kind, detail = "exception", "".join(traceback.format_exception_only(exc)).strip()
        else:
            kind = ""
        if kind:
            issue = classify(kind, detail, case)
            if issue is None:
                failures += 1
                if failures <= args.max_reports:
                    print(
                        f"FAIL {kind} at input {index}: {detail[:1000]}\n"
                        f"  replay: python tests/fuzz_targets.py --seed {args.seed} "
                        f"--check-every {args.check_every} --replay {index}",
                        flush=True,
                    )
            else:
                if not known[ISSUE_NAMES.index(issue)] and args.start == args.first:
                    print(f"known issue {issue} at input {index}: {detail[:300]}", flush=True)
                known[ISSUE_NAMES.index(issue)] += 1
        now = time.monotonic()
        if now - last_report >= args.report_every:
            done = index + 1 - args.start
            print(
                f"#{index + 1:>9} execs  {done / (now - started):8.0f} exec/s  {failures} failed",
                flush=True,
            )
            last_report = now
    STATE.pack_into(state, 0, end, args.runs, failures, *known)
    return 0


def replay(args: argparse.Namespace) -> int:
    sys.setrecursionlimit(100_000)
    corpus = load_corpus()
    case = generate(args.seed, args.replay, corpus, args.check_every)
    set_zone(corpus, args.replay)
    print(f"input {args.replay} (TZ={os.environ['TZ']}):")
    for name, value in vars(case).items():
        print(f"  {name} = {value!r}"[:5000])
    compiled, pure = modules()
    case.compare = True
    execute(case, compiled, pure)
    print("no failure")
    return 0


def supervise(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    print(
        f"fuzzing format_batch and DataPath: {args.runs} executions, seed {seed}, "
        f"pure twin every {args.check_every}",
        flush=True,
    )
    handle, state_path = tempfile.mkstemp(prefix="events-audit-fuzz-")
    os.write(handle, b"\0" * STATE.size)
    os.close(handle)
    start, end = args.start, args.start + args.runs
    crashes = failures = executed = 0
    known_seen: dict[str, int] = {}
    corpus: Corpus | None = None
    started = time.monotonic()
    try:
        while start < end and crashes < args.max_crashes:
            command = [
                sys.executable,
                os.path.abspath(__file__),
                "--worker-state",
                state_path,
                "--seed",
                str(seed),
                "--start",
                str(start),
                "--runs",
                str(end - start),
                "--check-every",
                str(args.check_every),
                "--report-every",
                str(args.report_every),
                "--max-reports",
                str(args.max_reports),
                "--crash-at",
                str(args.crash_at),
                "--first",
                str(args.start),
            ]
            with open(state_path, "r+b") as handle:
                handle.write(STATE.pack(-1, 0, 0, *[0] * len(ISSUE_NAMES)))  # -1: not started
            proc = subprocess.Popen(command)  # its output goes straight to ours
            hung = _watch(proc, state_path, args.hang_timeout)
            with open(state_path, "rb") as handle:
                index, done, worker_failures, *worker_known = STATE.unpack(handle.read(STATE.size))
            if index < 0:
                print(f"the fuzz worker failed to start ({_signal_name(proc.returncode)})")
                return 2
            failures += worker_failures
            for name, count in zip(ISSUE_NAMES, worker_known, strict=True):
                known_seen[name] = known_seen.get(name, 0) + count
            executed += done
            if proc.returncode == 0 and not hung:
                break
            how = "hung" if hung else f"died ({_signal_name(proc.returncode)})"
            corpus = corpus or load_corpus()
            issue = classify("crash", how, generate(seed, index, corpus, args.check_every))
            if issue is None:
                crashes += 1
                print(
                    f"CRASH: the worker {how} at input {index}\n"
                    f"  replay: python tests/fuzz_targets.py --seed {seed} "
                    f"--check-every {args.check_every} --start {index} --runs 1",
                    flush=True,
                )
            else:
                known_seen[issue] = known_seen.get(issue, 0) + 1
                print(f"known issue {issue} at input {index}: the worker {how}", flush=True)
            executed += 1
            start = index + 1  # go on after the crashing input
    finally:
        os.unlink(state_path)
    elapsed = time.monotonic() - started
    known = sum(known_seen.values())
    for name, count in sorted(known_seen.items()):
        if count:
            print(f"known issue {name}: {count} inputs", flush=True)
    print(
        f"{elapsed:.1f}s, {executed / max(elapsed, 1e-9):.0f} exec/s; "
        f"{failures} failed checks or exceptions, {known} known issues",
        flush=True,
    )
    print(f"{executed} executions, {crashes + failures} crashes", flush=True)
    bad = crashes + failures + (known if args.strict else 0)
    return 1 if bad else 0


def _watch(proc: subprocess.Popen, state_path: str, hang_timeout: float) -> bool:
    """Wait for the worker; True when it stopped making progress (killed)."""
    last_index, last_change = -1, time.monotonic()
    while True:
        try:
            proc.wait(timeout=0.5)
            return False
        except subprocess.TimeoutExpired:
            pass
        with open(state_path, "rb") as handle:
            index = STATE.unpack(handle.read(STATE.size))[0]
        if index != last_index:
            last_index, last_change = index, time.monotonic()
        elif time.monotonic() - last_change > hang_timeout:
            proc.kill()
            proc.wait()
            return True


def _signal_name(returncode: int) -> str:
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000, help="executions (default 100000)")
    parser.add_argument("--seed", type=int, default=None, help="default: random")
    parser.add_argument("--check-every", type=int, default=10, help="compare the pure twin every K")
    parser.add_argument("--replay", type=int, default=None, help="run one input, verbose")
    parser.add_argument("--strict", action="store_true", help="fail on known issues too")
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--report-every", type=float, default=5.0, help="seconds between reports")
    parser.add_argument("--max-reports", type=int, default=20, help="failures printed in full")
    parser.add_argument("--max-crashes", type=int, default=20, help="stop after this many crashes")
    parser.add_argument("--hang-timeout", type=float, default=60.0, help="seconds without progress")
    parser.add_argument("--worker-state", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--crash-at", type=int, default=-1, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker_state:
        return worker(args)
    if args.replay is not None:
        if args.seed is None:
            raise SystemExit("--replay needs the --seed of the run")
        return replay(args)
    return supervise(args)


if __name__ == "__main__":
    sys.exit(main())
