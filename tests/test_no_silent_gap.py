"""No silent gap: every event the stream held is logged or named, under field
faults too (real nats-server processes, both engines)."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
import urllib.request

import nats
import pytest
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from events_audit.logs import Logger
from events_audit.metrics import Metrics
from events_audit.sink import Sink, SinkError
from events_audit.upstream import UpstreamWatch
from proxy import TcpProxy
from servers import Service, consumer_info, publish, run_async, wait_all_acked, wait_until
from test_sink_faults import json_events, start

MOVED = "The log file was {} under the service; reopened its path"


# -- the log file removed or replaced under the service -------------------------


def test_sink_reopens_a_removed_or_replaced_path(tmp_path) -> None:
    path = tmp_path / "audit.log"
    sink = Sink(str(path), fsync=True)
    try:
        sink.write(b"one\n")
        path.unlink()
        sink.write(b"two\n")  # noticed before the write: into a new file at the path
        assert sink.notices == [("removed", {"path": str(path)})]
        sink.notices.clear()
        other = tmp_path / "other.log"
        other.write_bytes(b"other\n")
        os.replace(other, path)
        sink.write(b"three\n")
        assert sink.notices == [("replaced", {"path": str(path)})]
        sink.notices.clear()
        sink.write(b"four\n")
        assert sink.notices == []
    finally:
        sink.close()
    assert path.read_bytes() == b"other\nthree\nfour\n"


def test_lines_of_a_file_removed_while_written_are_not_taken_as_written(
    tmp_path, monkeypatch
) -> None:
    """Removed between the write and its end: the lines are in no file, so the
    write fails (its messages are NAKed and come back) and the next one reopens."""
    path = tmp_path / "audit.log"
    sink = Sink(str(path), fsync=True)
    real_fdatasync = os.fdatasync

    def remove_then_sync(fd: int) -> None:
        path.unlink()
        real_fdatasync(fd)

    try:
        monkeypatch.setattr(os, "fdatasync", remove_then_sync)
        try:
            sink.write(b"lost\n")
        except SinkError as exc:
            assert "removed or replaced while written" in str(exc)
        else:
            raise AssertionError("a write into a removed file counted as written")
        monkeypatch.setattr(os, "fdatasync", real_fdatasync)
        sink.write(b"again\n")
    finally:
        sink.close()
    assert path.read_bytes() == b"again\n"


def test_log_file_removed_then_replaced_while_events_flow(nats_server, tmp_path, engine) -> None:
    """Every event after each change is in the file at the path, and one
    warning says what happened (it goes to that file too)."""
    total = 1500
    publish(nats_server.url, [])
    svc = start(
        tmp_path, nats_server.url, engine, None, "--log-format=json", "--audit-pull-max-messages=20"
    )
    log = svc.log_path
    svc.wait_for("Starting to listen")

    def events(first: int, count: int) -> list[tuple[str, bytes]]:
        return [("events.d", b'{"id":"d-%d"}' % i) for i in range(first, first + count)]

    try:
        publish(nats_server.url, events(0, 500))
        wait_all_acked(nats_server.url, 500)
        log.unlink()  # an operator, a cleanup job
        publisher = threading.Thread(target=publish, args=(nats_server.url, events(500, 500)))
        publisher.start()
        publisher.join()
        wait_all_acked(nats_server.url, 1000)
        text = log.read_text()
        assert sorted(e["sequence"] for e in json_events(text)) == list(range(501, 1001))
        assert text.count(MOVED.format("removed")) == 1
        replacement = tmp_path / "new.log"
        replacement.write_text("")
        os.replace(replacement, log)  # a rotation that forgot the SIGHUP
        publish(nats_server.url, events(1000, 500))
        wait_all_acked(nats_server.url, total)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    text = log.read_text()
    assert sorted(e["sequence"] for e in json_events(text)) == list(range(1001, total + 1))
    assert text.count(MOVED.format("replaced")) == 1


def renamed_under(tmp_path, between, sighup: bool) -> tuple:
    """A sink writes "one", logrotate renames its file, ``between(path)`` runs,
    the sink writes "two" (then, after a SIGHUP, "three"): (the sink's notices,
    whether the path existed then, the renamed file, the path)."""
    path, rotated = tmp_path / "audit.log", tmp_path / "audit.log.1"
    sink = Sink(str(path), fsync=True)
    try:
        sink.write(b"one\n")
        os.rename(path, rotated)
        between(path)
        sink.write(b"two\n")
        notices, existed = list(sink.notices), path.exists()
        if sighup:
            sink.request_reopen()
            sink.write(b"three\n")
    finally:
        sink.close()
    return notices, existed, rotated, path


def test_a_file_only_renamed_keeps_its_lines_until_sighup(tmp_path) -> None:
    """logrotate renames, then signals: meanwhile the lines are in the renamed file."""
    notices, existed, rotated, path = renamed_under(tmp_path, lambda path: None, sighup=True)
    assert notices == [] and not existed
    assert rotated.read_bytes() == b"one\ntwo\n" and path.read_bytes() == b"three\n"


# -- the service's own stream update ------------------------------------------------

HELD = "Stream limit not applied yet: it would remove events not logged yet"


def stream_config(url: str):
    async def get():
        nc = await nats.connect(url)
        try:
            return (await nc.jetstream().stream_info("EVENTS")).config
        finally:
            await nc.close()

    return run_async(get())


def make_stream(url: str, **limits) -> None:
    async def make():
        nc = await nats.connect(url)
        try:
            await nc.jetstream().add_stream(
                StreamConfig(name="EVENTS", subjects=["events.>"], **limits)
            )
        finally:
            await nc.close()

    run_async(make())


def backlog_then_service(nats_server, tmp_path, engine, total, *flags, wait=0.0) -> Service:
    publish(nats_server.url, [("events.b", b'{"id":"b-%d"}' % i) for i in range(total)])
    time.sleep(wait)
    return start(
        tmp_path, nats_server.url, engine, None, "--log-format=json", "--log-fsync=never", *flags
    )


def held_until_applied(nats_server, tmp_path, engine, total, field, value, *flags, wait=0.0):
    """Every waiting event logged, then the limit applied: the log's text and
    its held-back warnings."""
    svc = backlog_then_service(nats_server, tmp_path, engine, total, *flags, wait=wait)
    try:
        wait_all_acked(nats_server.url, total, timeout=60)
        wait_until(
            lambda: getattr(stream_config(nats_server.url), field) == value, 15, f"{field} applied"
        )
        assert svc.terminate() == 0
    finally:
        svc.stop()
    text = svc.log_path.read_text()
    assert sorted(e["sequence"] for e in json_events(text)) == list(range(1, total + 1))
    held = [line for line in text.splitlines() if HELD in line]
    assert len(held) == 1 and f'"limit":"{field}"' in held[0], held
    return text, held[0]


def test_a_tighter_max_msgs_waits_for_the_backlog(nats_server, tmp_path, engine) -> None:
    """3,000 unlogged events, --audit-stream-max-msgs=1000: all logged, then applied."""
    text, held = held_until_applied(
        nats_server, tmp_path, engine, 3000, "max_msgs", 1000, "--audit-stream-max-msgs=1000"
    )
    assert '"unlogged_events":3000' in held and '"would_remove_unlogged":2000' in held
    updated = [line for line in text.splitlines() if "Updated JetStream stream" in line]
    assert len(updated) == 1 and '"max_msgs":"1000 (was unlimited)"' in updated[0], updated


@pytest.mark.parametrize(
    ("flag", "field", "value", "wait"),
    [
        ("--audit-stream-max-bytes=60000", "max_bytes", 60000, 0.0),
        ("--audit-stream-max-age=1s", "max_age", 1.0, 1.5),
    ],
)
def test_tighter_bytes_or_age_wait_for_the_backlog(
    nats_server, tmp_path, flag, field, value, wait
) -> None:
    # 2,000 events, about 100 kB
    held_until_applied(
        nats_server,
        tmp_path,
        "fast",
        2000,
        field,
        value,
        flag,
        "--audit-pull-max-messages=10",
        wait=wait,
    )


def test_a_limit_that_removes_only_logged_events_is_applied_at_once(nats_server, tmp_path) -> None:
    publish(nats_server.url, [("events.b", b"x")] * 100)
    first = start(tmp_path, nats_server.url, "fast", None, name="first")
    try:
        wait_all_acked(nats_server.url, 100)
        assert first.terminate() == 0
    finally:
        first.stop()
    svc = start(tmp_path, nats_server.url, "fast", None, "--audit-stream-max-msgs=10")
    try:
        svc.wait_for("Starting to listen")
        assert stream_config(nats_server.url).max_msgs == 10
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert HELD not in svc.output()


def test_only_explicit_limits_change_an_existing_stream(nats_server, tmp_path) -> None:
    """A stream made with 7 days keeps them when no --audit-stream-max-age is given."""
    week = 7 * 24 * 3600.0
    make_stream(nats_server.url, max_age=week, max_msgs=50_000)
    svc = start(tmp_path, nats_server.url, "fast", None, "--audit-stream-max-bytes=1GiB")
    try:
        svc.wait_for("Starting to listen")
        assert svc.terminate() == 0
    finally:
        svc.stop()
    config = stream_config(nats_server.url)
    assert (config.max_age, config.max_msgs, config.max_bytes) == (week, 50_000, 1 << 30)
    updated = [line for line in svc.output().splitlines() if "Updated JetStream stream" in line]
    assert len(updated) == 1 and "max_bytes=" in updated[0], updated
    assert "max_age" not in updated[0] and "max_msgs" not in updated[0]
    # nothing given: nothing changed
    again = start(tmp_path, nats_server.url, "fast", None, name="again")
    try:
        again.wait_for("Starting to listen")
        assert again.terminate() == 0
    finally:
        again.stop()
    assert "Using existing JetStream stream" in again.output()
    assert stream_config(nats_server.url).max_bytes == 1 << 30


# -- a crash loop: killed while holding delivered, unacked messages -----------------


def drain(fd: int) -> bytes:
    data = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


def deliveries_so_far(url: str) -> int:
    try:
        return consumer_info(url).delivered.consumer_seq or 0
    except nats.js.errors.NotFoundError:
        return 0  # not set up yet


# max_deliver 3 behaved as 2 does and cost 24 s of a suite that must stay under 15 min
@pytest.mark.parametrize("max_deliver", [2])
def test_a_crash_loop_loses_nothing(nats_server, tmp_path, engine, max_deliver) -> None:
    """Killed as often as --audit-max-deliver while it holds delivered messages
    (its writes block on a FIFO that is not read), then started normally: every
    event is in the output.  Before, the server gave the held ones up."""
    total = 2000
    pad = b"p" * 2000  # a batch is more than the pipe takes: most of it stays held
    publish(
        nats_server.url,
        [("events.c", b'{"id":"c-%d","pad":"%s"}' % (i, pad)) for i in range(total)],
    )
    flags = ("--log-format=json", "--audit-ack-wait=2s", f"--audit-max-deliver={max_deliver}")
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    written = b""  # what each killed instance got into the FIFO (acked, so kept)
    for round_ in range(max_deliver):
        before = deliveries_so_far(nats_server.url)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # read only after the kill
        svc = start(tmp_path, nats_server.url, engine, str(fifo), *flags, name=f"loop{round_}")
        try:
            # this instance got messages of its own (the ack pending count
            # still holds the last one's until they are delivered again)
            wait_until(
                lambda before=before: deliveries_so_far(nats_server.url) >= before + 100,
                20,
                "messages delivered to this instance",
            )
            time.sleep(0.3)  # the pipe is full: the write blocks
            assert consumer_info(nats_server.url).num_ack_pending > 0
        finally:
            svc.kill()  # kill -9 with messages held
            out = drain(reader)
            written += out[: out.rfind(b"\n") + 1]  # a line cut by the kill is not logged
            os.close(reader)
        time.sleep(2.5)  # their ack wait ends: the next instance gets them again
    svc = start(tmp_path, nats_server.url, engine, None, *flags, name="after")
    try:
        wait_all_acked(nats_server.url, total, timeout=60)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    final = json_events(svc.log_path.read_text())
    logged = {e["sequence"] for e in final} | {e["sequence"] for e in json_events(written.decode())}
    missing = sorted(set(range(1, total + 1)) - logged)
    assert not missing, f"{len(missing)} events in no output: {missing[:10]}"
    # The fast engine holds the same messages through every kill: past the
    # delivery at which the server gave them up.  The python engine fetches
    # little at a time, so what it holds changes from one kill to the next.
    reached = max(e["delivered"] for e in final)
    assert reached > (max_deliver if engine == "fast" else 1), "the crash loop did not bite"


GIVEN_UP = "Message given up by the server after the consumer's max_deliver: not logged"


def test_a_reused_consumer_that_gives_up_is_named(nats_server, tmp_path, engine) -> None:
    """A consumer made elsewhere with max_deliver 1: a warning at start, and an
    error line per message the server gives up on, with its sequence."""
    publish(nats_server.url, [("events.g", b'{"id":"g-%d"}' % i) for i in range(10)])

    async def rogue() -> None:  # takes the first 5 and never acks them
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            await js.add_consumer(
                "EVENTS",
                ConsumerConfig(
                    durable_name="events-audit-durable",
                    ack_policy=AckPolicy.EXPLICIT,
                    ack_wait=1.0,
                    max_deliver=1,
                ),
            )
            sub = await js.pull_subscribe_bind("events-audit-durable", "EVENTS")
            assert len(await sub.fetch(5, timeout=5)) == 5
        finally:
            await nc.close()

    run_async(rogue())
    svc = start(tmp_path, nats_server.url, engine, None, "--log-format=json")
    try:
        svc.wait_for("The consumer gives a message up after max_deliver deliveries")
        wait_until(lambda: svc.count(re.escape(GIVEN_UP)) >= 5, 20, "5 given-up lines")
        assert svc.terminate() == 0
    finally:
        svc.stop()
    records = [json.loads(line) for line in svc.log_path.read_text().splitlines()]
    given_up = sorted(r["sequence"] for r in records if r["msg"] == GIVEN_UP)
    assert given_up == [1, 2, 3, 4, 5]
    assert all(r["in_stream"] for r in records if r["msg"] == GIVEN_UP)
    assert sorted(e["sequence"] for e in json_events(svc.log_path.read_text())) == [6, 7, 8, 9, 10]


# -- a connection that carries nothing any more -------------------------------------

DEAD = "NATS did not answer pings: the connection carries nothing any more"


def test_a_black_holed_connection_is_replaced_within_10s(nats_server, tmp_path, engine) -> None:
    """The path stops carrying bytes without closing (default flags): the
    service finds out, reconnects through the proxy and loses nothing."""
    proxy = TcpProxy(("127.0.0.1", nats_server.port))
    total = 600
    try:
        publish(nats_server.url, [("events.h", b'{"id":"h-%d"}' % i) for i in range(300)])
        # (the ack wait only shortens the wait for what the dead path swallowed)
        svc = start(tmp_path, proxy.url, engine, None, "--log-format=json", "--audit-ack-wait=3s")
        try:
            wait_all_acked(nats_server.url, 300, timeout=30)
            assert proxy.black_hole() >= 1
            holed = time.monotonic()
            publish(
                nats_server.url, [("events.h", b'{"id":"h-%d"}' % i) for i in range(300, total)]
            )
            svc.wait_for("Reconnected to NATS", timeout=20)
            replaced = time.monotonic() - holed
            wait_all_acked(nats_server.url, total, timeout=30)
            assert svc.terminate() == 0
        finally:
            svc.stop()
    finally:
        proxy.close()
    print(f"replaced in {replaced:.1f}s")
    assert replaced <= 10, f"{replaced:.1f}s to replace the dead connection"
    assert svc.count(re.escape(DEAD)) == 1
    logged = {e["sequence"] for e in json_events(svc.log_path.read_text())}
    assert logged == set(range(1, total + 1))


# -- loss upstream --------------------------------------------------------------------

REMOVED = "Events removed from the stream before they were logged"
WENT_BACK = "The stream went back below what was already logged"


def set_max_msgs(url: str, max_msgs: int) -> None:
    async def update():
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            config = (await js.stream_info("EVENTS")).config
            config.max_msgs = max_msgs
            await js.update_stream(config)
        finally:
            await nc.close()

    run_async(update())


def events_of(prefix: str, first: int, count: int) -> list[tuple[str, bytes]]:
    return [
        ("events.u", b'{"id":"%s-%d"}' % (prefix.encode(), i)) for i in range(first, first + count)
    ]


def upstream_records(svc: Service) -> list[dict]:
    records = [json.loads(line) for line in svc.log_path.read_text().splitlines()]
    return [r for r in records if r["msg"].startswith((REMOVED, WENT_BACK))]


def test_events_removed_while_the_service_was_down_are_named(nats_server, tmp_path) -> None:
    publish(nats_server.url, events_of("a", 0, 100))
    first = start(tmp_path, nats_server.url, "fast", None, "--log-format=json", name="first")
    try:
        wait_all_acked(nats_server.url, 100)
        assert first.terminate() == 0
    finally:
        first.stop()
    set_max_msgs(nats_server.url, 50)  # another tool's limit
    publish(nats_server.url, events_of("b", 100, 200))  # 101-300; the stream keeps 251-300
    svc = start(tmp_path, nats_server.url, "fast", None, "--log-format=json")
    try:
        wait_all_acked(nats_server.url, 300)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    found = upstream_records(svc)
    assert len(found) == 1, found
    assert (found[0]["first_sequence"], found[0]["last_sequence"], found[0]["events"]) == (
        101,
        250,
        150,
    )
    assert found[0]["cause"] == "the stream's max_msgs limit"
    assert sorted(e["sequence"] for e in json_events(svc.log_path.read_text())) == list(
        range(251, 301)
    )


def test_events_removed_while_the_service_is_stalled_are_named(nats_server, tmp_path, engine):
    """SIGSTOPped (a frozen host, a paused container) while the limit trims
    unlogged events; the normal trim of logged ones before it said nothing."""
    publish(nats_server.url, [])
    set_max_msgs(nats_server.url, 50)
    svc = start(tmp_path, nats_server.url, engine, None, "--log-format=json")
    try:
        svc.wait_for("Starting to listen")
        publish(nats_server.url, events_of("a", 0, 200))  # trimmed as logged: normal
        wait_all_acked(nats_server.url, 200)
        time.sleep(2.5)  # a check sees the service caught up
        assert upstream_records(svc) == []
        svc.proc.send_signal(signal.SIGSTOP)
        try:
            # 201-3200, more than the engines asked for; the stream keeps 3151-3200
            publish(nats_server.url, events_of("b", 200, 3000))
        finally:
            svc.proc.send_signal(signal.SIGCONT)
        wait_all_acked(nats_server.url, 3200, timeout=30)
        wait_until(lambda: upstream_records(svc), 10, "the loss reported")
        assert svc.terminate() == 0
    finally:
        svc.stop()
    found = upstream_records(svc)
    assert len(found) == 1, found
    logged = {e["sequence"] for e in json_events(svc.log_path.read_text())}
    # what the server had sent before the stop was still logged after it
    missing = set(range(1, 3201)) - logged
    assert missing and missing <= set(range(201, 3151)) and set(range(1, 201)) <= logged
    assert found[0]["events"] == len(missing)
    assert found[0]["first_sequence"] <= min(missing) and found[0]["last_sequence"] == 3150


def test_a_recreated_stream_below_the_logged_sequence_is_named(nats_server, tmp_path) -> None:
    publish(nats_server.url, events_of("a", 0, 100))
    svc = start(tmp_path, nats_server.url, "fast", None, "--log-format=json")
    try:
        wait_all_acked(nats_server.url, 100)
        time.sleep(2.5)  # a check saw 100 logged

        async def recreate():
            nc = await nats.connect(nats_server.url)
            try:
                await nc.jetstream().delete_stream("EVENTS")
            finally:
                await nc.close()

        run_async(recreate())
        wait_until(lambda: svc.count("Created JetStream consumer") == 2, 20, "set up again")
        publish(nats_server.url, events_of("b", 100, 10))
        wait_all_acked(nats_server.url, 10)
        wait_until(lambda: upstream_records(svc), 10, "the recreated stream reported")
        assert svc.terminate() == 0
    finally:
        svc.stop()
    found = upstream_records(svc)
    assert len(found) == 1 and found[0]["logged_through"] == 100, found
    assert "(recreated)" in found[0]["msg"]


# -- a write that never returns -----------------------------------------------------


def test_a_hung_output_keeps_the_loop_and_is_given_up_at_shutdown(
    nats_server, tmp_path, engine
) -> None:
    """A FIFO whose reader stopped reading: /health answers, SIGTERM exits
    within the bound with code 4, nothing is acked that is not in the pipe,
    and a restart with a working output logs every event."""
    total = 1000
    publish(nats_server.url, [])
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    flags = ("--log-format=json", "--log-shutdown-timeout=2s")
    svc = start(tmp_path, nats_server.url, engine, str(fifo), *flags)
    got = b""
    try:
        deadline = time.monotonic() + 20
        while b"Starting to listen" not in got and time.monotonic() < deadline:
            got += drain(reader)
            time.sleep(0.05)
        port = re.search(rb'"addr":\["127\.0\.0\.1:(\d+)"\]', got)
        assert port, got
        pad = b"p" * 2000
        publish(
            nats_server.url,
            [("events.f", b'{"id":"f-%d","pad":"%s"}' % (i, pad)) for i in range(total)],
        )
        wait_until(lambda: consumer_info(nats_server.url).num_ack_pending > 0, 20, "held")
        time.sleep(1.0)  # the pipe is full, the write hangs
        health = urllib.request.urlopen(f"http://127.0.0.1:{int(port[1])}/health", timeout=2)
        assert health.status == 200  # the event loop is free
        stopping = time.monotonic()
        svc.proc.send_signal(signal.SIGTERM)
        code = svc.proc.wait(timeout=20)
        took = time.monotonic() - stopping
    finally:
        svc.stop()
    acked = consumer_info(nats_server.url).ack_floor.stream_seq
    got += drain(reader)
    os.close(reader)
    assert code == 4, code
    assert took < 2 + 1 + 5, f"{took:.1f}s to exit"  # the bound, a pull's expiry, the acks' flush
    in_pipe = json_events(got[: got.rfind(b"\n") + 1].decode())
    in_pipe_seqs = {e["sequence"] for e in in_pipe}
    assert set(range(1, acked + 1)) <= in_pipe_seqs, "acked but not in the output"
    assert "The log output took no write before the shutdown bound" in svc.output()
    after = start(tmp_path, nats_server.url, engine, None, *flags, name="after")
    try:
        wait_all_acked(nats_server.url, total, timeout=30)
        assert after.terminate() == 0
    finally:
        after.stop()
    after_events = [e["sequence"] for e in json_events(after.log_path.read_text())]
    assert len(after_events) == len(set(after_events)), "logged twice after the restart"
    assert in_pipe_seqs | set(after_events) == set(range(1, total + 1))


def test_a_rotation_with_a_new_file_is_followed_without_a_warning(tmp_path) -> None:
    """logrotate's create: renamed, a new file at the path, SIGHUP still to come."""
    notices, _, rotated, path = renamed_under(
        tmp_path, lambda path: path.write_bytes(b""), sighup=False
    )
    assert notices == [("rotated", {"path": str(path)})]
    assert rotated.read_bytes() == b"one\n" and path.read_bytes() == b"two\n"


def test_events_logged_by_another_instance_while_starting_are_not_a_stream_gone_back(
    nats_server,
) -> None:
    """The stream is read, then another instance logs events published since,
    then the consumer is read: its ack floor is past the stream's last
    sequence as read, and the stream did not go back (once in a full run)."""

    async def scenario() -> list[bytes]:
        nc = await nats.connect(nats_server.url)
        try:
            js = nc.jetstream()
            await js.add_stream(name="EVENTS", subjects=["events.>"])
            sub = await js.pull_subscribe("events.>", durable="audit", stream="EVENTS")

            async def log_more(count: int) -> None:  # as another instance would
                for i in range(count):
                    await js.publish("events.u", b"%d" % i)
                for msg in await sub.fetch(count, timeout=5):
                    await msg.ack_sync()

            await log_more(10)

            class AnotherInstanceBetween:  # the real server, with a step between its two reads
                async def stream_info(self, name):
                    return await js.stream_info(name)

                async def consumer_info(self, stream, durable):
                    await log_more(5)
                    return await js.consumer_info(stream, durable)

            lines: list[bytes] = []
            watch = UpstreamWatch(
                AnotherInstanceBetween(),
                "EVENTS",
                "audit",
                "events.>",
                Logger(lines.append),
                Metrics(),
            )
            await watch.check()
            assert (await js.consumer_info("EVENTS", "audit")).ack_floor.stream_seq == 15
            return lines
        finally:
            await nc.close()

    assert run_async(scenario()) == []
