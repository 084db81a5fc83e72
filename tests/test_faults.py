"""Faults under load: the service, a server or the cluster leader killed
mid-stream, several instances on one durable, the consumer or the stream
deleted under the service, a server that stops answering for a while.

Every test runs for both engines and counts every event by its stream
sequence across all the outputs involved: nothing may be lost; duplicates
are bounded where the design bounds them, and recorded (the ``FAULTS |``
lines, ``pytest -s`` shows them; also in the junit properties).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from nats.js.api import ConsumerInfo, StreamConfig

from events_audit.jetstream import requests_in_flight
from servers import (
    NatsCluster,
    Publisher,
    Service,
    consumer_info,
    wait_all_acked,
    wait_until,
    with_jetstream,
)
from test_service import TOPIC, base_args, event_lines

STREAM = "EVENTS"
DURABLE = "events-audit-durable"
BATCH = 50  # --audit-pull-max-messages
#: Duplicates after a kill are lines written and not yet acked: the write in
#: progress (a group of chunks), far below the PULL_CREDIT messages asked for;
#: held to 4 batches here.
IN_FLIGHT = 4 * BATCH
#: Duplicates after a nats-server SIGKILL (or a cluster leader's): what the
#: server sends again is what it had delivered and not yet got (and stored)
#: the ack of.  The service holds at most its pull credit of those,
#: requests_in_flight(BATCH) x BATCH messages (1,600; the consumer's
#: max_ack_pending is twice that, room for the batches being written); the
#: server's store lags its memory by a flush of a few ms on top.  The kills
#: below come once more than this was logged, so a reconnect that replayed
#: the stream from sequence 1 exceeds the bound on duplicates by itself.
SERVER_KILL_IN_FLIGHT = requests_in_flight(BATCH) * BATCH
LOGGED_BEFORE_SERVER_KILL = SERVER_KILL_IN_FLIGHT + 500


def fault_args(url: str, engine: str, *extra: str) -> list[str]:
    return base_args(
        url,
        "--log-format=json",
        "--log-level=info",
        f"--audit-pull-max-messages={BATCH}",
        *extra,
        engine=engine,
    )


def records(services: Iterable[Service]) -> list[dict]:
    return [json.loads(line) for svc in services for line in event_lines(svc)]


def logged_ids(services: Iterable[Service]) -> Counter:
    return Counter(record.get("event_id") for record in records(services))


def stream_state(url):
    async def call(js):
        return (await js.stream_info(STREAM)).state

    return with_jetstream(url, call)


@dataclass
class Tally:
    events: int  # stream sequences that must be logged
    lost: int  # of those, logged by no one
    duplicates: int  # lines beyond the first for a sequence
    redelivered: int  # lines with delivered > 1
    per_service: list[int]


def tally(services: list[Service], publisher: Publisher, url) -> Tally:
    """Every event by stream sequence, across all the outputs.

    The events are the stream's sequences 1..last_seq (the stream is checked
    to hold exactly the publisher's acked events, each once); each logged
    line must carry the id that was stored under its sequence.
    """
    state = stream_state(url)
    by_sequence = {seq: ident for ident, seq in publisher.acked.items()}
    assert len(publisher.acked) == publisher.total
    assert state.first_seq == 1 and state.messages == state.last_seq == publisher.total, state
    assert sorted(by_sequence) == list(range(1, publisher.total + 1))
    lines = records(services)
    seen = Counter(record["sequence"] for record in lines)
    wrong = [r for r in lines if by_sequence.get(r["sequence"]) != r.get("event_id")]
    assert not wrong, f"lines whose id is not the one stored under their sequence: {wrong[:3]}"
    return Tally(
        events=len(by_sequence),
        lost=len(by_sequence.keys() - seen.keys()),
        duplicates=sum(n - 1 for n in seen.values()),
        redelivered=sum(1 for r in lines if r.get("delivered", 1) > 1),
        per_service=[len(event_lines(svc)) for svc in services],
    )


@pytest.fixture
def report(request, record_property):
    """Records one row of the fault table: test, engine, events, lost, duplicates, time."""
    started = time.monotonic()

    def emit(engine: str, result: Tally | None = None, **extra) -> None:
        row = {"test": request.node.name, "engine": engine}
        if result is not None:
            row.update(vars(result))
        row.update(extra)
        row["seconds"] = round(time.monotonic() - started, 1)
        for key, value in row.items():
            record_property(key, value)
        print("\nFAULTS | " + " | ".join(f"{k}={v}" for k, v in row.items()))

    return emit


def kill_mid_stream(victim: Service, publisher: Publisher, url: str, logged: int) -> int:
    """Publish, kill -9 the victim once it logged `logged` events while more
    are coming; the messages delivered and not acked (more than none).

    The victim is held (SIGSTOP) before the kill until the consumer shows
    messages delivered and not acked: its pull requests keep taking events
    in that it neither writes nor acks, so the redelivery checks have
    something to check.  Held, it sends nothing more: once the count stops
    moving, the acks it had sent are in.
    """
    publisher.start()
    wait_until(lambda: len(event_lines(victim)) >= logged, 30, f"{logged} events logged")
    deadline = time.monotonic() + 20
    while True:
        victim.proc.send_signal(signal.SIGSTOP)
        try:
            wait_until(lambda: consumer_info(url).num_ack_pending > 0, 1, "unacked messages")
            break
        except AssertionError:
            # held between a batch acked and the next pull (python engine)
            if time.monotonic() > deadline:
                raise
            victim.proc.send_signal(signal.SIGCONT)
            time.sleep(0.02)
    assert publisher.is_alive(), "the stream was complete before the kill"
    victim.kill()
    return settled_ack_pending(url)


def settled_ack_pending(url: str, timeout: float = 10) -> int:
    """num_ack_pending once two reads 0.1 s apart agree."""
    last = [consumer_info(url).num_ack_pending]

    def settled():
        time.sleep(0.1)
        now = consumer_info(url).num_ack_pending
        same, last[0] = now == last[0], now
        return same

    wait_until(settled, timeout, "num_ack_pending to settle", interval=0)
    return last[0]


def assert_same_consumer(before, after, svc: Service) -> None:
    """The consumer after the fault is the one from before it, not one made
    again (from sequence 1 or elsewhere)."""
    assert after.created == before.created, "the consumer was created again"
    assert after.config.deliver_policy == before.config.deliver_policy
    assert after.config.opt_start_seq == before.config.opt_start_seq
    assert svc.count("Created JetStream consumer") == 1, svc.output()[-2000:]


def stop_all(*services: Service) -> None:
    for svc in services:
        svc.stop()


# -- 1. the service killed ------------------------------------------------------


def test_service_killed_mid_stream_then_restarted(nats_server, tmp_path, engine, report) -> None:
    """kill -9 while events arrive, then a restart: every event is logged;
    logged twice at most what was written and not yet acked at the kill,
    which the restarted instance gets again after the (short) ack wait."""
    total = 6000
    url = nats_server.url
    args = fault_args(url, engine, "--audit-ack-wait=2s")
    first = Service(tmp_path, args, name="first").start()
    second = Service(tmp_path, args, name="second")
    publisher = Publisher(url, total, rate=2500)
    try:
        first.wait_for("Starting to listen")
        unacked_at_kill = kill_mid_stream(first, publisher, url, 1500)
        assert unacked_at_kill > 0
        second.start()
        publisher.finish()
        wait_all_acked(url, total, timeout=30)
        assert second.terminate() == 0
    finally:
        publisher.halt()
        stop_all(first, second)
    result = tally([first, second], publisher, url)
    report(engine, result, unacked_at_kill=unacked_at_kill)
    assert result.lost == 0
    assert result.duplicates <= IN_FLIGHT
    assert result.duplicates <= unacked_at_kill
    # what the killed instance had not acked went to the restarted one after the ack wait
    assert sum(1 for r in records([second]) if r["delivered"] > 1) >= unacked_at_kill


# -- 2. the server killed -------------------------------------------------------


def test_server_killed_and_restarted_mid_stream(nats_server, tmp_path, engine, report) -> None:
    """nats-server SIGKILLed and restarted on its store and port while events
    arrive: the service reconnects by itself and logs every event."""
    total = 6000
    url = nats_server.url
    svc = Service(tmp_path, fault_args(url, engine, "--audit-ack-wait=2s"))
    publisher = Publisher(url, total, rate=2500)
    try:
        svc.start().wait_for("Starting to listen")
        publisher.start()
        wait_until(
            lambda: len(event_lines(svc)) >= LOGGED_BEFORE_SERVER_KILL,
            30,
            f"{LOGGED_BEFORE_SERVER_KILL} events logged",
        )
        consumer_before = consumer_info(url)
        nats_server.kill()
        logged_at_kill = len(event_lines(svc))
        nats_server.start()
        assert nats_server.url == url
        assert publisher.is_alive(), "the stream was complete before the kill"
        publisher.finish()
        consumer_after = wait_all_acked(url, total, timeout=30)
        assert svc.terminate() == 0
    finally:
        publisher.halt()
        svc.stop()
    assert "Reconnected to NATS" in svc.output()
    result = tally([svc], publisher, url)
    report(engine, result, logged_at_kill=logged_at_kill, publish_retries=publisher.retries)
    assert result.lost == 0
    assert result.duplicates <= SERVER_KILL_IN_FLIGHT
    assert_same_consumer(consumer_before, consumer_after, svc)


# -- 3. the stream leader of a 3-node cluster killed ------------------------------


@pytest.fixture
def cluster(tmp_path):
    nodes = NatsCluster(tmp_path / "cluster").start()
    yield nodes
    nodes.stop()


async def leaders(js) -> tuple[str, str, ConsumerInfo]:
    """The stream's leader and the consumer's (server names), and the consumer."""
    stream = await js.stream_info(STREAM)
    consumer = await js.consumer_info(STREAM, DURABLE)
    return stream.cluster.leader, consumer.cluster.leader, consumer


def lead_from(urls: list[str], home: str) -> None:
    """Make server ``home`` the stream's leader and the consumer's."""
    request = json.dumps({"placement": {"preferred": home}}).encode()

    async def step_down(js) -> bool:
        stream, consumer, _ = await leaders(js)
        subjects = []
        if stream != home:
            subjects.append(f"$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}")
        if consumer != home:
            subjects.append(f"$JS.API.CONSUMER.LEADER.STEPDOWN.{STREAM}.{DURABLE}")
        for subject in subjects:
            try:
                await js._nc.request(subject, request, timeout=5)
            except Exception:
                pass  # asked again on the next round
        return not subjects

    wait_until(lambda: with_jetstream(urls, step_down), 30, f"{home} to lead", interval=0.5)


def test_cluster_stream_leader_killed_mid_stream(cluster, tmp_path, engine, report) -> None:
    """R3 stream on a 3-node cluster: its leader SIGKILLed while events
    arrive; the service (given all three URLs) logs every event.

    The leader killed is the server the service is connected to and the
    consumer's leader too (moved there first), so the service has to
    reconnect and the consumer to move: the kill is felt, not just survived.
    """
    total = 5000
    svc = Service(
        tmp_path,
        fault_args(cluster.url, engine, "--audit-ack-wait=2s", "--audit-stream-replicas=3"),
    )
    publisher = Publisher(cluster.urls, total, rate=2500)
    try:
        svc.start().wait_for("Starting to listen", timeout=30)
        connected_url = svc.wait_for(r'"msg":"Connected to NATS"[^\n]*"url":"([^"]+)"').group(1)
        home = next(node.name for node in cluster.nodes if node.url == connected_url)
        lead_from(cluster.urls, home)
        publisher.start()
        wait_until(
            lambda: len(event_lines(svc)) >= LOGGED_BEFORE_SERVER_KILL,
            30,
            f"{LOGGED_BEFORE_SERVER_KILL} events logged",
        )

        victim, consumer_leader, consumer_before = with_jetstream(cluster.urls, leaders)
        assert victim == consumer_leader == home, "a leader moved before the kill"
        cluster.node(victim).kill()
        assert publisher.is_alive(), "the stream was complete before the kill"
        live = [node.url for node in cluster.nodes if node.name != victim]
        publisher.finish(timeout=90)
        consumer_after = wait_all_acked(live, total, timeout=60)
        assert svc.terminate() == 0
    finally:
        publisher.halt()
        svc.stop()
    result = tally([svc], publisher, live)
    new_leader, _, _ = with_jetstream(live, leaders)
    connected = re.search(r'"msg":"Connected to NATS"[^\n]*"url":"([^"]+)"', svc.output())
    report(
        engine,
        result,
        killed=victim,
        consumer_leader_killed=consumer_leader == victim,
        service_was_on_it=connected.group(1) == cluster.node(victim).url,
        new_leader=new_leader,
        publish_retries=publisher.retries,
    )
    assert result.lost == 0
    assert result.duplicates <= SERVER_KILL_IN_FLIGHT
    assert_same_consumer(consumer_before, consumer_after, svc)
    assert new_leader != victim
    assert "Reconnected to NATS" in svc.output()


# -- 4. instances sharing the durable --------------------------------------------


@pytest.mark.parametrize("instances", [2, 3])
def test_instances_share_the_durable(nats_server, tmp_path, engine, instances, report) -> None:
    """Instances on one durable consumer: every event logged exactly once."""
    total = 5000
    url = nats_server.url
    services = [
        Service(tmp_path, fault_args(url, engine), name=f"svc{i}") for i in range(instances)
    ]
    publisher = Publisher(url, total, rate=2500)
    try:
        for svc in services:
            svc.start()
        for svc in services:
            svc.wait_for("Starting to listen")
        publisher.start()
        publisher.finish()
        wait_all_acked(url, total, timeout=30)
        for svc in services:
            assert svc.terminate() == 0
    finally:
        publisher.halt()
        stop_all(*services)
    result = tally(services, publisher, url)
    report(engine, result)
    assert result.lost == 0
    assert result.duplicates == 0
    assert all(result.per_service), f"an instance got nothing: {result.per_service}"


def test_one_of_two_instances_killed(nats_server, tmp_path, engine, report) -> None:
    """Two instances, one SIGKILLed mid-stream: the other logs the rest,
    including what the killed one had not acked (after the 2 s ack wait)."""
    total = 6000
    url = nats_server.url
    args = fault_args(url, engine, "--audit-ack-wait=2s")
    victim = Service(tmp_path, args, name="victim")
    survivor = Service(tmp_path, args, name="survivor")
    publisher = Publisher(url, total, rate=2500)
    try:
        victim.start()
        survivor.start()
        victim.wait_for("Starting to listen")
        survivor.wait_for("Starting to listen")
        unacked_at_kill = kill_mid_stream(victim, publisher, url, 750)
        assert unacked_at_kill > 0
        publisher.finish()
        wait_all_acked(url, total, timeout=30)
        assert survivor.terminate() == 0
    finally:
        publisher.halt()
        stop_all(victim, survivor)
    result = tally([victim, survivor], publisher, url)
    report(engine, result, unacked_at_kill=unacked_at_kill)
    assert result.lost == 0
    # (no tighter bound: the survivor's own unacked ones are in unacked_at_kill too)
    assert result.duplicates <= IN_FLIGHT


# -- 5. the consumer, then the stream deleted under the service -------------------


def delete_consumer(url: str) -> None:
    async def call(js):
        await js.delete_consumer(STREAM, DURABLE)

    with_jetstream(url, call)


def delete_stream(url: str) -> None:
    async def call(js):
        await js.delete_stream(STREAM)

    with_jetstream(url, call)


def add_stream(url: str) -> None:
    async def call(js):
        await js.add_stream(StreamConfig(name=STREAM, subjects=[TOPIC]))

    with_jetstream(url, call)


def publish_all(url: str, prefix: str, count: int) -> Publisher:
    publisher = Publisher(url, count, rate=5000, prefix=prefix)
    publisher.start()
    return publisher.finish()


def wait_logged(services: list[Service], ids: list[str], timeout: float = 20) -> None:
    def done():
        seen = logged_ids(services)
        return all(seen[i] for i in ids)

    wait_until(done, timeout, f"{ids[0]}..{ids[-1]} logged", interval=0.1)


def seconds_until_logged(services: list[Service], ids: list[str], timeout: float) -> float | None:
    """How long until all of ``ids`` are logged; None: not within ``timeout``."""
    started = time.monotonic()
    try:
        wait_logged(services, ids, timeout)
    except AssertionError:
        return None
    return round(time.monotonic() - started, 2)


def test_consumer_then_stream_deleted_under_the_service(
    nats_server, tmp_path, engine, report
) -> None:
    """The service recreates a deleted consumer (starting after what it had
    acked) and a deleted stream, and logs what is published after each."""
    url = nats_server.url
    count = 300
    svc = Service(tmp_path, fault_args(url, engine)).start()
    try:
        svc.wait_for("Starting to listen")
        before = publish_all(url, "before", count)
        wait_all_acked(url, count)

        delete_consumer(url)
        # published at once: the stream keeps them for the recreated consumer
        after_consumer = publish_all(url, "after-consumer", count)
        wait_until(lambda: svc.count("Created JetStream consumer") >= 2, 20, "a new consumer")
        wait_logged([svc], after_consumer.ids())
        wait_all_acked(url, 2 * count)

        delete_stream(url)
        # retried until the service has created the stream again
        after_stream = Publisher(url, count, rate=5000, prefix="after-stream")
        after_stream.start()
        wait_until(lambda: svc.count("Created JetStream stream") >= 2, 20, "a new stream")
        after_stream.finish()
        wait_logged([svc], after_stream.ids())
        wait_all_acked(url, count)
        assert svc.proc.poll() is None
        assert svc.terminate() == 0
    finally:
        svc.stop()
    seen = logged_ids([svc])
    expected = before.ids() + after_consumer.ids() + after_stream.ids()
    lost = [i for i in expected if not seen[i]]
    duplicates = sum(n - 1 for n in seen.values())
    report(engine, events=len(expected), lost=len(lost), duplicates=duplicates)
    assert not lost
    assert duplicates == 0, "events acked before a deletion were logged again"
    assert set(seen) == set(expected)
    out = svc.output()
    # the recreated consumer started after the last sequence acked
    starts = [json.loads(line) for line in out.splitlines() if "Created JetStream consumer" in line]
    assert [s["start_sequence"] for s in starts] == [1, count + 1, 1]


def error_line(svc: Service, word: str) -> dict | None:
    """The first error entry of the service's log that mentions ``word``."""
    for line in svc.lines():
        if word in line and '"level":"error"' in line:
            return json.loads(line)
    return None


def test_stream_deleted_without_create_stream(nats_server, tmp_path, engine, report) -> None:
    """--audit-create-stream=false: a deleted stream is an error line naming
    it, the service keeps running, and goes on once the stream is back."""
    url = nats_server.url
    count = 200
    add_stream(url)
    svc = Service(tmp_path, fault_args(url, engine, "--audit-create-stream=false")).start()
    try:
        svc.wait_for("Starting to listen")
        before = publish_all(url, "before", count)
        wait_all_acked(url, count)

        delete_stream(url)
        error = wait_until(lambda: error_line(svc, STREAM), 15, "an error line naming the stream")
        time.sleep(3)  # it keeps running (and retrying)
        assert svc.proc.poll() is None, svc.output()[-2000:]
        errors_while_gone = svc.count(r'"level":"error"')

        # The stream is back and publishers go on at once, while the service
        # waits for its next retry (held here, so it looks only afterwards).
        svc.proc.send_signal(signal.SIGSTOP)
        try:
            add_stream(url)
            after = publish_all(url, "after", count)
        finally:
            svc.proc.send_signal(signal.SIGCONT)
        recovered_in = seconds_until_logged([svc], after.ids(), timeout=10)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    seen = logged_ids([svc])
    expected = before.ids() + after.ids()
    lost = [i for i in expected if not seen[i]]
    duplicates = sum(n - 1 for n in seen.values())
    starts = [
        json.loads(line)["start_sequence"]
        for line in svc.lines()
        if "Created JetStream consumer" in line
    ]
    report(
        engine,
        events=len(expected),
        lost=len(lost),
        duplicates=duplicates,
        recovered_in=recovered_in,
        error_lines=errors_while_gone,
        error=error.get("error"),
        consumer_starts=starts,
    )
    assert not lost, (
        f"{len(lost)} events not logged ({lost[0]}..{lost[-1]}); the consumers were created "
        f"at stream sequences {starts}: the one on the recreated stream must start at 1"
    )
    assert duplicates == 0
    assert "Created JetStream stream" not in svc.output()


# -- 6. a pull that goes silent ---------------------------------------------------

HEARTBEAT = 0.4  # 40 % of --audit-pull-timeout=1s (base_args)


def test_pull_that_goes_silent_recovers(nats_server, tmp_path, engine, report) -> None:
    """The server SIGSTOPped for a while (the pull neither delivers nor beats),
    then SIGCONTed: events published after that are logged within seconds.

    The ack wait is the default 30 s on purpose: events a pull took in and
    dropped come back only after it, which is not "within seconds".
    """
    url = nats_server.url
    count = 200
    svc = Service(tmp_path, fault_args(url, engine)).start()
    pid = nats_server.proc.pid
    try:
        svc.wait_for("Starting to listen")
        before = publish_all(url, "before", count)
        wait_all_acked(url, count)
        os.kill(pid, signal.SIGSTOP)
        try:
            # The fast engine calls a pull lost after 2 heartbeats + 0.5 s of
            # silence, checked every heartbeat: 5 heartbeats are past that.
            time.sleep(5 * HEARTBEAT)
        finally:
            os.kill(pid, signal.SIGCONT)
        after = publish_all(url, "after", count)
        recovered_in = seconds_until_logged([svc], after.ids(), timeout=10)
        missing_after_10s = sum(1 for i in after.ids() if not logged_ids([svc])[i])
        assert svc.terminate() == 0
    finally:
        svc.stop()
    seen = logged_ids([svc])
    expected = before.ids() + after.ids()
    lost = [i for i in expected if not seen[i]]
    duplicates = sum(n - 1 for n in seen.values())
    silent = svc.count("Pull went silent")
    errors = [line for line in svc.lines() if '"level":"error"' in line]
    report(
        engine,
        events=len(expected),
        lost=len(lost),
        duplicates=duplicates,
        recovered_in=recovered_in,
        missing_after_10s=missing_after_10s,
        went_silent_lines=silent,
        error_lines=len(errors),
    )
    assert recovered_in is not None and recovered_in < 5, (
        f"{missing_after_10s} of the {count} events published after SIGCONT were not logged "
        f"within 10 s; errors: {errors[:3]}"
    )
    assert not lost
    if engine == "fast":
        assert silent >= 1
