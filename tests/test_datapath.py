"""The data path twins: the same frames out of any chunking of the stream."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events_audit import _datapath_py as pure
from events_audit import _formatting_py as spec

if os.environ.get("EVENTS_AUDIT_NO_EXTENSIONS"):
    pytest.skip("the compiled twin is switched off", allow_module_level=True)

from events_audit import _datapath as compiled  # noqa: E402

SID = 7
NOW = 1736591400123456789
EVENT = (
    b'{"id":"event-12345","type":"user.action","source":"user-service",'
    b'"timestamp":"2025-01-11T10:30:00Z","data":{"action":"login","user_id":"67890"}}'
)


def reply(seq: int, delivered: int = 1) -> bytes:
    return b"$JS.ACK.EVENTS.durable.%d.%d.%d.1736591399987654321.%d" % (delivered, seq, seq, 9)


def msg(subject: bytes, sid: int, reply_to: bytes, payload: bytes) -> bytes:
    head = (
        b"MSG %s %d %s %d\r\n" % (subject, sid, reply_to, len(payload))
        if reply_to
        else (b"MSG %s %d %d\r\n" % (subject, sid, len(payload)))
    )
    return head + payload + b"\r\n"


def hmsg(subject: bytes, sid: int, reply_to: bytes, headers: bytes, payload: bytes) -> bytes:
    total = len(headers) + len(payload)
    args = (
        b"%s %d %s %d %d" % (subject, sid, reply_to, len(headers), total)
        if reply_to
        else (b"%s %d %d %d" % (subject, sid, len(headers), total))
    )
    return b"HMSG " + args + b"\r\n" + headers + payload + b"\r\n"


STATUS_408 = hmsg(
    b"_INBOX.x",
    SID,
    b"",
    b"NATS/1.0 408 Request Timeout\r\nNats-Pending-Messages: 5\r\nNats-Pending-Bytes: 0\r\n\r\n",
    b"",
)
HEARTBEAT = hmsg(b"_INBOX.x", SID, b"", b"NATS/1.0 100 Idle Heartbeat\r\n\r\n", b"")


pins: list[bytes] = []  # the pin id after each feed of the last run()


takens: list[int] = []  # what feed_frames took of each view in the last run()


def run(module, chunks, layout=0, events=True, debug=False, max_deliver=-1, in_place_from=None):
    """Feed the chunks; everything the data path gave back, joined.
    From chunk ``in_place_from`` on, as the fast engine's reader does: each
    chunk lands behind what the last feed_frames left, and all of that is fed."""
    path = module.DataPath(SID, layout, events, debug, max_deliver)
    results = []
    pins.clear()
    takens.clear()
    kept = b""
    for number, chunk in enumerate(chunks):
        if in_place_from is None or number < in_place_from:
            r = path.feed(chunk, NOW)
        else:
            view = kept + chunk
            r = path.feed_frames(memoryview(view), NOW)
            takens.append(r[12])
            assert 0 <= r[12] <= len(view)
            kept = view[r[12] :]
        pins.append(path.pin_id)
        lines = r[1] + module.processed_lines(layout, r[4], r[3], "12.5µs", NOW + 5000)
        results.append((r[0], lines, r[2], r[3], r[5:10], r[10], r[11]))
    other = b"".join(r[0] for r in results)
    lines = b"".join(r[1] for r in results)
    acks = b"".join(r[2] for r in results)
    replies = b"".join(r[3] for r in results)
    counts = (
        *(sum(r[4][i] for r in results) for i in range(3)),
        max((r[4][3] for r in results), default=0),
        min((r[4][4] for r in results if r[4][4]), default=0),
    )
    last_chances = [c for r in results for c in r[5]]
    statuses = [s for r in results for s in r[6]]
    return other, lines, acks, counts, statuses, replies, last_chances


def test_frames_are_sorted_out() -> None:
    stream = (
        b'INFO {"x":1}\r\n'
        + msg(b"events.a", SID, reply(1), EVENT)
        + b"PING\r\n"
        + msg(b"other", 3, b"", b"api reply")
        + HEARTBEAT
        + hmsg(
            b"events.h",
            SID,
            reply(2, 2),
            b"NATS/1.0\r\nNats-Msg-Id: 1\r\n\r\n",
            b"raw with headers",
        )
        + STATUS_408
        + b"+OK\r\n"
    )
    for module in (pure, compiled):
        other, lines, acks, counts, statuses, *_ = run(module, [stream])
        assert other == (
            b'INFO {"x":1}\r\nPING\r\n' + msg(b"other", 3, b"", b"api reply") + b"+OK\r\n"
        )
        assert acks == b"PUB " + reply(1) + b" 0\r\n\r\nPUB " + reply(2, 2) + b" 0\r\n\r\n"
        assert counts == (2, 1, 1, 2, 1)  # messages, structured, redelivered, max/min sequence
        assert statuses == [(100, "Idle Heartbeat", 0, 0), (408, "Request Timeout", 5, 0)]
        want = spec.format_batch(
            ["events.a", "events.h"], [reply(1), reply(2, 2)], [EVENT, b"raw with headers"], NOW, 0
        )
        assert lines == want


def test_frames_for_nak_and_in_progress() -> None:
    stream = msg(b"e", SID, reply(1), b"x") + msg(b"e", SID, reply(2), b"y")
    for module in (pure, compiled):
        replies = run(module, [stream])[5]
        assert module.reply_frames(replies, b"-NAK") == (
            b"PUB " + reply(1) + b" 4\r\n-NAK\r\nPUB " + reply(2) + b" 4\r\n-NAK\r\n"
        )


def test_malformed_control_line() -> None:
    for module in (pure, compiled):
        with pytest.raises(module.ProtocolViolation):
            module.DataPath(SID, 0).feed(b"MSG only-subject\r\n", NOW)


payloads = st.sampled_from([EVENT, b"raw", b"", b"null", b'{"id":1}', b"a\r\nb", b"\xff\xfe"]) | (
    st.binary(max_size=40)
)
frames = st.one_of(
    st.builds(
        lambda p, s, d: msg(b"events.x", SID, reply(s, d), p),
        payloads,
        st.integers(1, 10**6),
        st.integers(1, 4),
    ),
    st.builds(lambda p: msg(b"events.noreply", SID, b"", p), payloads),
    st.builds(lambda p: msg(b"_INBOX.other", 99, b"r.1", p), payloads),
    st.builds(
        lambda p, s: hmsg(b"events.h", SID, reply(s), b"NATS/1.0\r\nK: v\r\n\r\n", p),
        payloads,
        st.integers(1, 100),
    ),
    st.builds(
        lambda p, s, pin: hmsg(
            b"events.p", SID, reply(s), b"NATS/1.0\r\nNats-Pin-Id: %s\r\n\r\n" % pin, p
        ),
        payloads,
        st.integers(1, 100),
        st.sampled_from([b"pinA", b"pinB", b" spaced ", b"x" * 64, b"x" * 65]),
    ),
    st.sampled_from(
        [
            STATUS_408,
            HEARTBEAT,
            b"PING\r\n",
            b"PONG\r\n",
            b"+OK\r\n",
            b"-ERR 'Stale Connection'\r\n",
            b'INFO {"server_id":"x"}\r\n',
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(frames, max_size=12).map(b"".join),
    cuts=st.lists(st.integers(0, 2000)),
    layout=st.sampled_from([0, 1, 2]),
    events=st.booleans(),
    debug=st.booleans(),
)
def test_twins_agree_on_any_chunking(stream, cuts, layout, events, debug) -> None:
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    got = run(compiled, chunks, layout, events, debug, max_deliver=2)
    got_pins = list(pins)
    want = run(pure, chunks, layout, events, debug, max_deliver=2)
    assert got == want
    assert got_pins == pins
    if not debug:  # nothing is lost or duplicated however the stream is cut
        assert got == run(pure, [stream], layout, events, max_deliver=2)


@settings(max_examples=300, deadline=None)
@given(
    stream=st.lists(frames, max_size=12).map(b"".join),
    cuts=st.lists(st.integers(0, 2000)),
    layout=st.sampled_from([0, 1, 2]),
    in_place_from=st.integers(0, 4),
)
def test_frames_left_to_the_reader_come_out_the_same(stream, cuts, layout, in_place_from) -> None:
    """feed_frames leaves the unfinished frame to the caller, who gives it
    again with what follows: the same frames and lines as one feed of the
    whole stream, after any chunks fed the old way (a frame begun there is
    completed by the data path), and the twins take the same bytes."""
    points = sorted({min(c, len(stream)) for c in cuts})
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    got = run(compiled, chunks, layout, max_deliver=2, in_place_from=in_place_from)
    got_takens, got_pins = list(takens), list(pins)
    assert got == run(pure, chunks, layout, max_deliver=2, in_place_from=in_place_from)
    assert got_takens == takens
    assert got_pins == pins
    assert got == run(pure, [stream], layout, max_deliver=2)


def test_a_frame_cut_is_left_whole_to_the_reader() -> None:
    first, second = msg(b"e", SID, reply(1), EVENT), msg(b"e", SID, reply(2), b"x" * 5000)
    for module in (compiled, pure):
        path = module.DataPath(SID, 0)
        fed = path.feed_frames(first + second[:3000], NOW)
        assert fed[5] == 1 and fed[12] == len(first)  # the cut frame is left, not copied
        fed = path.feed_frames(second[:3000], NOW)  # nothing more came: nothing taken
        assert fed[5] == 0 and fed[12] == 0
        fed = path.feed_frames(second, NOW)
        assert fed[5] == 1 and fed[12] == len(second) and fed[8] == 2
        # a frame begun by feed() is completed from the view, the rest left
        path.feed(second[:10], NOW)  # its control line cut: kept whole with all after it
        fed = path.feed_frames(second[10:20], NOW)
        assert fed[5] == 0 and fed[12] == 10
        fed = path.feed_frames(second[20:] + first[:5], NOW)
        assert fed[5] == 1 and fed[12] == len(second) - 20 + 5  # all, as it came with it
        fed = path.feed_frames(first[5:] + second[:70], NOW)  # the same: first's line was cut
        assert fed[5] == 1 and fed[12] == len(first) - 5 + 70
        fed = path.feed_frames(second[70:] + first[:7], NOW)  # second's line was whole:
        assert fed[5] == 1 and fed[12] == len(second) - 70  # first[:7] is left to the caller


@pytest.mark.parametrize("layout", [0, 1, 2])
def test_debug_lines_match_the_python_engine(layout) -> None:
    """Both engines write the original's debug lines the same way."""
    from events_audit.batch import Renderer
    from events_audit.logs import Logger

    renderer = Renderer(Logger(lambda _: None, "debug", layout))
    subjects, replies, payloads = ["e.a", "e.b"], [reply(1).decode(), ""], [EVENT, b"raw"]
    stream = msg(b"e.a", SID, reply(1), EVENT) + msg(b"e.b", SID, b"", b"raw")
    for module in (pure, compiled):
        path = module.DataPath(SID, layout, True, True)
        result = path.feed(stream, NOW)
        lines = result[1]
        assert lines == renderer.before_ack(subjects, replies, payloads, NOW)
        assert b"Processing JetStream message" in lines
        after = module.processed_lines(layout, result[4], result[3], "1.5ms", NOW)
        assert after.count(b"Message processed and acknowledged") == 2
        assert after == renderer.after_lines(subjects, replies, "1.5ms", NOW)


def test_failed_writes_are_nakked_or_terminated_at_the_last_delivery() -> None:
    stream = (
        msg(b"e", SID, reply(11, 1), b"first")
        + msg(b"e", SID, reply(12, 3), b"x" * 300)
        + msg(b"e", SID, reply(13, 2), b"third")
    )
    for module in (pure, compiled):
        *_, replies, last_chances = run(module, [stream[:50], stream[50:]], max_deliver=3)
        frames = module.settle_frames(replies, 3, b'-NAK {"delay":1000000000}')
        assert frames == (
            b"PUB "
            + reply(11, 1)
            + b' 25\r\n-NAK {"delay":1000000000}\r\n'
            + b"PUB "
            + reply(12, 3)
            + b" 5\r\n+TERM\r\n"
            + b"PUB "
            + reply(13, 2)
            + b' 25\r\n-NAK {"delay":1000000000}\r\n'
        )
        assert last_chances == [(12, 3, b"x" * 256)]


def test_a_line_break_in_a_control_line_is_refused() -> None:
    for module in (pure, compiled):
        with pytest.raises(module.ProtocolViolation):
            module.DataPath(SID, 0).feed(b"MSG e 7 r\n.x 1\r\nx\r\n", NOW)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20), st.booleans())
def test_line_checksums_twins_agree_with_zlib(lines, cut_last) -> None:
    """The digest's locator: zlib's CRC-32 of each line, newline included."""
    import zlib

    data = b"\n".join(lines) + (b"" if cut_last else b"\n")
    pieces = [p + b"\n" for p in data.split(b"\n")]
    pieces[-1] = pieces[-1][:-1]  # after the last newline: a line only if not empty
    expected = [zlib.crc32(p).to_bytes(4, "little") for p in pieces if p]
    for module in (pure, compiled):
        assert module.line_checksums(data) == b"".join(expected)
        assert module.line_checksums(memoryview(data)) == b"".join(expected)


def test_the_pin_id_is_the_last_data_message_s() -> None:
    """--audit-ha=pinned: the server appends its Nats-Pin-Id after any the
    publisher set; the last data message with headers in a feed counts,
    statuses do not."""
    own = b"NATS/1.0\r\nNats-Pin-Id: fake\r\nX: y\r\nNats-Pin-Id: HomOjDbOEBBBXCkGf8yU6u\r\n\r\n"
    later = b"NATS/1.0\r\nNats-Pin-Id: second\r\n\r\n"
    for module in (compiled, pure):
        path = module.DataPath(SID, 0)
        path.feed(hmsg(b"events.x", SID, reply(1), own, b"{}") + STATUS_408, NOW)
        assert path.pin_id == b"HomOjDbOEBBBXCkGf8yU6u"
        two = hmsg(b"events.x", SID, reply(2), own, b"{}") + hmsg(
            b"events.x", SID, reply(3), later, b"{}"
        )
        path.feed(two, NOW)
        assert path.pin_id == b"second"
        path.feed(two[:30], NOW)  # cut: nothing whole yet
        assert path.pin_id == b""
        path.feed(two[30:], NOW)
        assert path.pin_id == b"second"
        path.feed(two + hmsg(b"events.x", SID, reply(4), b"NATS/1.0\r\nK: v\r\n\r\n", b""), NOW)
        assert path.pin_id == b""
        path.feed(msg(b"events.x", SID, reply(5), b"{}") + HEARTBEAT, NOW)
        assert path.pin_id == b""
