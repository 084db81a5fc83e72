"""The fast engine's data path: wire frames in, lines and acks out.

Each round feeds 1000 MSG frames (80 % structured events, 20 % raw lines, the
e2e benchmark's mix) in 64 KiB chunks, as they come off the socket.
"""

from __future__ import annotations

import pytest

from events_audit import _datapath as compiled
from events_audit import _datapath_py as pure

SID = 1
NOW = 1736591400123456789
EVENT = (
    b'{"id":"event-%d","type":"user.action","source":"user-service",'
    b'"timestamp":"2025-01-11T10:30:00Z","data":{"action":"login","user_id":"67890",'
    b'"ip":"10.0.1.2","amount":12.5,"ok":true,"tags":["a","b"]}}'
)


def _stream(count: int) -> bytes:
    frames = []
    for seq in range(1, count + 1):
        payload = EVENT % seq if seq % 5 else b"raw-%d plain text audit line" % seq
        reply = b"$JS.ACK.EVENTS.events-audit-durable.1.%d.%d.1736591399987654321.%d" % (
            seq,
            seq,
            count - seq,
        )
        frames.append(b"MSG events.user %d %s %d\r\n%s\r\n" % (SID, reply, len(payload), payload))
    return b"".join(frames)


STREAM = _stream(1000)
CHUNKS = [STREAM[i : i + 65536] for i in range(0, len(STREAM), 65536)]


def _feed_all(module, layout: int):
    path = module.DataPath(SID, layout)

    def run():
        total = 0
        for chunk in CHUNKS:
            total += path.feed(chunk, NOW)[5]
        assert total == 1000
        return total

    return run


@pytest.mark.parametrize("layout", [0, 1], ids=["json", "text"])
def test_datapath_feed(benchmark, layout) -> None:
    benchmark.group = f"datapath-{'json' if layout == 0 else 'text'}"
    benchmark.extra_info["messages"] = 1000
    benchmark(_feed_all(compiled, layout))


@pytest.mark.parametrize("layout", [0, 1], ids=["json", "text"])
def test_datapath_feed_py(benchmark, layout) -> None:
    benchmark.group = f"datapath-{'json' if layout == 0 else 'text'}"
    benchmark.extra_info["messages"] = 1000
    benchmark(_feed_all(pure, layout))


BIG = b"x" * (8 << 20)  # one 8 MiB raw payload, as 32 KiB socket reads (nats-py's)
BIG_FRAME = b"MSG events.big %d $JS.ACK.EVENTS.d.1.1.1.1736591399987654321.0 %d\r\n%s\r\n" % (
    SID,
    len(BIG),
    BIG,
)
BIG_CHUNKS = [BIG_FRAME[i : i + 32768] for i in range(0, len(BIG_FRAME), 32768)]


def test_datapath_large_frame(benchmark) -> None:
    """A frame of many reads is gathered once, not copied again per read."""
    benchmark.group = "datapath-large-frame"

    def run():
        path = compiled.DataPath(SID, 0)
        total = 0
        for chunk in BIG_CHUNKS:
            total += path.feed(chunk, NOW)[5]
        assert total == 1
        return total

    benchmark(run)
