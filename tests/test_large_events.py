"""Large events: what the fast engine asks for is bounded by bytes and follows
the size of the messages, a slow output never makes nats-server drop the
connection as a slow consumer, and a disconnect does not leave the engine
idle.  Real nats-server processes; a TCP proxy cuts the connection."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter

import pytest
from nats.js.errors import NotFoundError

from events_audit.engines.fast import (
    APPENDED_ASK_MAX,
    APPENDED_BUDGETS,
    MESSAGE_BYTES_FLOOR,
    MIN_REQUEST_BYTES,
    PullShaper,
    may_ask,
    pull_shape,
    request_batch,
)
from events_audit.jetstream import requests_in_flight
from proxy import TcpProxy
from servers import (
    NatsServer,
    Service,
    consumer_info,
    deliveries,
    publish,
    wait_all_acked,
    wait_until,
)
from test_service import base_args
from test_sink_faults import SlowReader, start

MiB = 1 << 20


def event(i: int, size: int) -> bytes:
    body = {"id": f"ev-{i}", "type": "t", "data": {"note": ""}}
    pad = size - len(json.dumps(body, separators=(",", ":")))
    body["data"]["note"] = "word " * (pad // 5) + "x" * (pad % 5)
    return json.dumps(body, separators=(",", ":")).encode()


def logged_ids(text: str) -> list[int]:
    return [int(m) for m in re.findall(r'"event_id":"ev-(\d+)"', text)]


# -- the shape of the requests (no server) -------------------------------------


@pytest.mark.parametrize("batch", [1, 10, 100, 1000])
@pytest.mark.parametrize("budget", [1 * MiB, 8 * MiB, 64 * MiB])
@pytest.mark.parametrize("largest", [64 << 10, 1 * MiB + (64 << 10), 8 * MiB])
def test_unknown_sizes_make_requests_that_take_the_largest(batch, budget, largest) -> None:
    requests, request_bytes = pull_shape(batch, budget, largest)
    assert request_bytes >= largest  # any message fits one request
    assert 1 <= requests <= requests_in_flight(batch)
    assert requests == 1 or requests * request_bytes <= budget


@pytest.mark.parametrize("batch", [1, 10, 100, 1000])
@pytest.mark.parametrize("size", [100, 1 << 10, 4 << 10, 64 << 10, 1 * MiB])
def test_known_sizes_stay_within_the_budget(batch, size) -> None:
    budget, largest = 8 * MiB, 1 * MiB + (64 << 10)
    requests, request_bytes = pull_shape(batch, budget, largest, per_message=size)
    assert requests * request_bytes <= budget
    assert request_bytes >= max(MIN_REQUEST_BYTES, min(2 * size, largest))  # room for two
    assert requests >= 2  # one at the server while the other's messages are written
    if batch * size * 2 * requests_in_flight(batch) <= budget:
        assert requests == requests_in_flight(batch)  # small events: the deep pipeline


def test_the_consumers_own_limit_wins() -> None:
    assert pull_shape(100, 8 * MiB, 1 * MiB, 0.0, consumer_max_bytes=1000)[1] == 1000


def test_the_shaper_learns_sizes_and_a_large_message_widens_the_requests() -> None:
    shaper = PullShaper(100, 8 * MiB, 1 * MiB + (64 << 10), 0)
    assert shaper.shape()[1] >= 1 * MiB  # nothing seen yet: room for the largest
    for _ in range(5):
        shaper.fed(100 * 300, 100)
    requests, request_bytes, count = shaper.shape()
    assert requests == requests_in_flight(100) and request_bytes < 1 * MiB and count == 100
    for _ in range(20):
        shaper.fed(100 * (64 << 10), 100)
    requests, request_bytes, count = shaper.shape()
    assert requests == 2 and count * MESSAGE_BYTES_FLOOR >= request_bytes  # ended by bytes
    shaper.too_small()  # a request got nothing: a larger message waits
    assert shaper.shape()[1] >= 1 * MiB


@pytest.mark.parametrize("budget", [2 * MiB, 8 * MiB, 32 * MiB])
def test_long_lines_appended_in_place_ask_for_more_but_half_max_pending_at_most(budget) -> None:
    largest = 1 * MiB + (64 << 10)
    for size, long in ((300, False), (64 << 10, True), (1 * MiB, True)):
        shaper = PullShaper(100, budget, largest, 0)
        for _ in range(20):
            shaper.fed(100 * size, 100)
        held = shaper.shape(appending=False)
        appended = shaper.shape(appending=True)
        asked, asked_appended = held[0] * held[1], appended[0] * appended[1]
        if not long:  # short lines wait in memory either way
            assert appended == held
            continue
        assert asked <= max(budget, largest)
        cap = max(budget, min(APPENDED_BUDGETS * budget, APPENDED_ASK_MAX))
        assert asked_appended <= max(cap, 2 * largest)
        assert asked_appended <= 32 * MiB  # half the server's default max_pending
        if budget < APPENDED_ASK_MAX:
            assert asked_appended > asked


@pytest.mark.parametrize("batch", [1, 10, 100, 1000])
@pytest.mark.parametrize("size", [100, 1 << 10, 4 << 10, 64 << 10, 1 * MiB])
def test_a_request_ends_by_its_count_or_only_by_its_bytes(batch, size) -> None:
    """Not by either: a request ended by its count with bytes left ends
    twice (silently, and with 409 "Batch Completed" on nats-server 2.10 and
    later), so which of its ends came could not be told."""
    budget, largest = 8 * MiB, 1 * MiB + (64 << 10)
    _, request_bytes = pull_shape(batch, budget, largest, per_message=size)
    count = request_batch(batch, request_bytes, size)
    if count == batch:
        assert request_bytes >= 2 * batch * size  # its count ends it, bytes to spare
    else:
        assert count * MESSAGE_BYTES_FLOOR >= request_bytes  # no message is that small
    assert request_batch(batch, request_bytes, 0.0) == batch  # sizes not known yet
    if count > batch:
        assert request_batch(batch, request_bytes, size, consumer_max_batch=batch + 1) == batch + 1


def test_lines_waiting_for_their_fsync_hold_the_pull_back_only_at_several_budgets() -> None:
    budget, room = 8 * MiB, 200
    assert may_ask(0, 0, 0, room, budget)
    assert not may_ask(room, 0, 0, room, budget)  # a pipeline's worth waits
    assert not may_ask(10, budget, budget, room, budget)  # a budget's worth in memory
    # appended to the file already, waiting for the fsync: the pull goes on
    assert may_ask(10, 0, budget, room, budget)
    assert may_ask(10, budget - 1, APPENDED_BUDGETS * budget - 1, room, budget)
    assert not may_ask(10, 0, APPENDED_BUDGETS * budget, room, budget)


# -- against nats-server ---------------------------------------------------------


def test_a_slow_output_never_makes_a_slow_consumer(tmp_path, engine) -> None:
    """Events of 512 KiB into a FIFO read at a few MB/s, through a server
    whose per-client max_pending is 16 MiB: asking for more than that (the
    engine once asked for 64 MiB) makes the server close the connection as a
    slow consumer and redeliver what it had queued.  Now: no disconnect,
    every event once, none redelivered."""
    server = NatsServer(tmp_path, config="max_pending: 16MB\n").start()
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = SlowReader(fifo, piece=256 << 10, pause=0.02)
    reader.start()
    total = 64
    try:
        publish(server.url, [("events.big", event(i, 512 << 10)) for i in range(total)])
        svc = start(
            tmp_path,
            server.url,
            engine,
            str(fifo),
            "--log-format=json",
            "--audit-pull-max-messages=100",
        )
        try:
            wait_all_acked(server.url, total, timeout=90)
            info = consumer_info(server.url)
            assert svc.terminate() == 0
        finally:
            svc.stop()
    finally:
        reader.close()
        server.stop()
    server_log = server.log_path.read_text(errors="replace")
    assert "Slow Consumer" not in server_log
    assert "Disconnected" not in svc.output()
    assert sorted(logged_ids(reader.text())) == list(range(total))
    assert deliveries(info) == total


@pytest.mark.parametrize(("size", "total"), [(300, 30_000), (16 << 10, 3_000)])
def test_the_server_holds_no_more_requests_than_the_engine_counts(
    nats_server, tmp_path, size, total
) -> None:
    """What the server may send this client is what its waiting requests
    ask for, so the engine must not lose count of them.  A request ended by
    bytes ends with a 409 status, one ended by its count (with bytes left)
    as well since nats-server 2.10 ("Batch Completed"); counting a request
    off by its messages and again by such a status once left the server
    holding hundreds of requests (491 of 300 B events, 41 of 16 KiB where the
    engine kept 5), until the connection was dropped as a slow consumer.
    Polled while the events flow: never more than the pipeline's requests
    and those of the start (before the size is known) together."""
    publish(nats_server.url, [("events.w", event(i, size)) for i in range(total)])
    args = base_args(nats_server.url, "--log-format=json", "--audit-pull-max-messages=100")
    svc = Service(tmp_path, args + ["--audit-engine=fast"]).start()
    budget, largest = 8 * MiB, 1 * MiB + (64 << 10)
    # long lines go straight into the file: up to APPENDED_ASK_MAX is asked for
    appended = min(APPENDED_BUDGETS * budget, APPENDED_ASK_MAX)
    bound = pull_shape(100, budget, largest)[0] + max(
        pull_shape(100, b, largest, size + 200)[0] for b in (budget, appended)
    )
    most = 0
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                info = consumer_info(nats_server.url)
            except NotFoundError:  # not created yet
                continue
            most = max(most, info.num_waiting)
            if info.ack_floor.stream_seq >= total:
                break
            time.sleep(0.02)
        wait_all_acked(nats_server.url, total)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert most <= bound, f"the server held {most} requests (at most {bound} expected)"
    assert "Slow Consumer" not in nats_server.log_path.read_text(errors="replace")
    assert sorted(logged_ids(svc.output())) == list(range(total))


def test_large_messages_among_small_ones(nats_server, tmp_path, engine) -> None:
    """The engine has learnt that events are small when one near max_payload
    comes: the small requests end by bytes with nothing delivered, and the
    next ones have room for it.  No warning, every event once."""
    svc = Service(tmp_path, base_args(nats_server.url, "--log-format=json", engine=engine))
    svc.start()
    try:
        svc.wait_for("Starting to listen")
        publish(nats_server.url, [("events.s", event(i, 300)) for i in range(300)])
        wait_all_acked(nats_server.url, 300)
        big = [("events.b", event(300 + i, (1 << 20) - 4096)) for i in range(3)]
        small = [("events.s", event(303 + i, 300)) for i in range(300)]
        publish(nats_server.url, big + small)
        wait_all_acked(nats_server.url, 603, timeout=30)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    out = svc.output()
    assert "level=warning" not in out and '"level":"warning"' not in out
    assert sorted(logged_ids(out)) == list(range(603))


def test_after_a_cut_connection_the_engine_asks_again_at_once(nats_server, tmp_path, engine):
    """The connection is closed under the service while 16 KiB events flow:
    it reconnects and goes on at once (events published after the reconnect
    are logged within seconds, long before the 30 s ack wait would bring back
    what the old connection held); nothing is lost."""
    proxy = TcpProxy(("127.0.0.1", nats_server.port))
    total = 400
    try:
        publish(nats_server.url, [("events.m", event(i, 16 << 10)) for i in range(total)])
        svc = Service(tmp_path, base_args(proxy.url, "--log-format=json", engine=engine))
        svc.start()
        try:
            svc.wait_for('"event_id":"ev-', timeout=20)
            assert proxy.cut() >= 1
            svc.wait_for("Reconnected to NATS", timeout=15)
            wait_all_acked(nats_server.url, total, timeout=60)
            started = time.monotonic()
            later = [("events.m", event(total + i, 300)) for i in range(50)]
            publish(nats_server.url, later)
            wait_all_acked(nats_server.url, total + 50, timeout=20)
            elapsed = time.monotonic() - started
            assert svc.terminate() == 0
        finally:
            svc.stop()
    finally:
        proxy.close()
    assert elapsed < 5, f"{elapsed:.1f}s to log 50 events after the reconnect"
    assert set(logged_ids(svc.output())) == set(range(total + 50))


def test_acks_lost_with_a_dead_connection_are_sent_again(nats_server, tmp_path, engine) -> None:
    """The path goes dead while events flow (a black hole: what is sent into
    it is lost, acks too): after the reconnect the last acks are sent again,
    so no event written before comes back after the ack wait to be logged
    twice, and none is lost."""
    proxy = TcpProxy(("127.0.0.1", nats_server.port))
    total = 2000
    try:
        publish(nats_server.url, [("events.m", event(i, 4 << 10)) for i in range(total)])
        args = base_args(
            proxy.url,
            "--log-format=json",
            "--audit-nats-ping-interval=1s",  # the dead path found in ~2 s
            "--audit-ack-wait=8s",  # well after the reconnect
            engine=engine,
        )
        svc = Service(tmp_path, args).start()
        try:
            wait_until(lambda: len(logged_ids(svc.output())) >= 300, 20, "events logged")
            assert proxy.black_hole() >= 1
            svc.wait_for("Reconnected to NATS", timeout=20)
            # (an ack lost for good keeps its message pending: back after the ack wait)
            wait_all_acked(nats_server.url, total, timeout=60)
            assert svc.terminate() == 0
        finally:
            svc.stop()
    finally:
        proxy.close()
    ids = logged_ids(svc.output())
    assert set(ids) == set(range(total))
    twice = sorted(i for i, n in Counter(ids).items() if n > 1)
    assert not twice, f"{len(twice)} events logged twice, e.g. {twice[:5]}"
