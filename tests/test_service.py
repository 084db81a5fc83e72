"""The service end to end, as a subprocess against a real nats-server."""

from __future__ import annotations

import ast
import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from events_audit import _formatting_py as spec
from golden_cases import load_golden_cases
from servers import ROOT, Service, consumer_info, publish, run_async, wait_all_acked, wait_until

TOPIC = "events.>"
GOLDEN = load_golden_cases()


def base_args(url: str, *extra: str, engine: str = "auto") -> list[str]:
    return [
        "--audit=nats",
        f"--audit-nats-addr={url}",
        f"--audit-topic={TOPIC}",
        "--health-addr=127.0.0.1:0",
        "--audit-pull-timeout=1s",
        f"--audit-engine={engine}",
        *extra,
    ]


def sample_payloads(count: int) -> list[bytes]:
    """Payloads of the golden cases (structured and raw alike), small ones first."""
    payloads = sorted(
        {case.payload for case in GOLDEN if len(case.payload) < 2000}, key=lambda p: (len(p), p)
    )
    step = max(1, len(payloads) // count)
    return payloads[::step][:count]


TIME_FIELD = {
    "json": re.compile(r',"time":"[^"]*"\}$'),
    "text": re.compile(r'^time="[^"]*" '),
}


def normalise_time(line: str, layout: str) -> str:
    return TIME_FIELD[layout].sub(',"time":"T"}' if layout == "json" else 'time="T" ', line)


def event_lines(svc: Service) -> list[str]:
    return [line for line in svc.lines() if "Received " in line and " event" in line]


def reply_and_sequence(line: str, layout: str) -> tuple[str, int]:
    if layout == "json":
        record = json.loads(line)
        return record["reply"], record["sequence"]
    reply = re.search(r' reply=("(?:[^"\\]|\\.)*"|\S*)', line).group(1)
    if reply.startswith('"'):
        reply = ast.literal_eval(reply)  # Go %q of an ASCII subject
    return reply, int(re.search(r" sequence=(\d+)", line).group(1))


@pytest.mark.parametrize("layout", ["json", "text"])
def test_events_are_logged_as_the_spec_says_and_acked(
    nats_server, tmp_path, layout, engine
) -> None:
    payloads = sample_payloads(120)
    publish(nats_server.url, [("events.golden", p) for p in payloads])
    svc = Service(
        tmp_path,
        base_args(nats_server.url, f"--log-format={layout}", "--log-level=info", engine=engine),
    ).start()
    try:
        info = wait_all_acked(nats_server.url, len(payloads))
        assert info.num_pending == 0 and info.num_ack_pending == 0
        assert svc.terminate() == 0
    finally:
        svc.stop()
    lines = event_lines(svc)
    assert len(lines) == len(payloads)
    code = 1 if layout == "text" else 0
    for line in lines:
        reply, seq = reply_and_sequence(line, layout)
        # The spec twin matches real logrus byte for byte (test_formatting_golden).
        want = spec.format_batch(["events.golden"], [reply], [payloads[seq - 1]], 0, code)
        assert normalise_time(line, layout) == normalise_time(want.decode().rstrip("\n"), layout)
    kinds = {"structured" if "structured" in line else "raw" for line in lines}
    assert kinds == {"structured", "raw"}
    assert "JetStream events audit server stopped" in svc.lines()[-1]


def test_restart_resumes_the_durable(nats_server, tmp_path, engine) -> None:
    publish(nats_server.url, [("events.a", b'{"id":"first-%d"}' % i) for i in range(20)])
    args = base_args(nats_server.url, "--log-format=json", "--log-level=info", engine=engine)
    first = Service(tmp_path, args, name="first").start()
    wait_all_acked(nats_server.url, 20)
    assert first.terminate() == 0
    publish(nats_server.url, [("events.a", b'{"id":"second-%d"}' % i) for i in range(10)])
    second = Service(tmp_path, args, name="second").start()
    try:
        wait_all_acked(nats_server.url, 30)
        assert second.terminate() == 0
    finally:
        second.stop()
    ids = [json.loads(line)["event_id"] for line in event_lines(second)]
    assert sorted(ids) == sorted(f"second-{i}" for i in range(10))
    assert "Using existing JetStream consumer" in second.output()


def test_stream_is_created_then_updated(nats_server, tmp_path) -> None:
    args = base_args(nats_server.url, "--log-level=info", "--audit-stream-max-msgs=1000")
    svc = Service(tmp_path, args, name="create").start()
    svc.wait_for("Starting to listen")
    assert svc.terminate() == 0
    assert "Created JetStream stream" in svc.output()

    args[-1] = "--audit-stream-max-msgs=2000"
    svc = Service(tmp_path, args, name="update").start()
    svc.wait_for("Starting to listen")
    assert svc.terminate() == 0
    assert "Updated JetStream stream" in svc.output()

    async def max_msgs():
        import nats

        nc = await nats.connect(nats_server.url)
        info = await nc.jetstream().stream_info("EVENTS")
        await nc.close()
        return info.config.max_msgs, info.config.subjects

    assert run_async(max_msgs()) == (2000, [TOPIC])


def test_missing_stream_without_create_is_a_clear_error(nats_server, tmp_path) -> None:
    svc = Service(tmp_path, base_args(nats_server.url, "--audit-create-stream=false")).start()
    assert svc.proc.wait(timeout=20) == 1
    assert "does not exist and --audit-create-stream=false" in svc.output()


def create_consumer(url: str, **config) -> None:
    """The stream and the durable made before the service starts, as another
    tool (or an earlier deployment) would leave them."""

    async def create():
        import nats
        from nats.js.api import ConsumerConfig, StreamConfig

        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            await js.add_stream(StreamConfig(name="EVENTS", subjects=[TOPIC]))
            await js.add_consumer(
                "EVENTS", ConsumerConfig(durable_name="events-audit-durable", **config)
            )
        finally:
            await nc.close()

    run_async(create())


def test_existing_push_consumer_is_replaced(nats_server, tmp_path, engine) -> None:
    create_consumer(nats_server.url, deliver_subject="push.inbox")
    publish(nats_server.url, [("events.p", b"push-%d" % i) for i in range(5)])
    svc = Service(tmp_path, base_args(nats_server.url, "--log-level=info", engine=engine)).start()
    try:
        wait_all_acked(nats_server.url, 5)
        assert not consumer_info(nats_server.url).config.deliver_subject
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert "Deleting existing push consumer" in svc.output()
    assert len(event_lines(svc)) == 5


def test_the_defaults_start(nats_server, tmp_path, engine) -> None:
    """Every default except the address (and a free health port): the original
    cannot start like this on nats-server >= 2.9, because its consumer name
    differs from its durable name."""
    svc = Service(
        tmp_path,
        ["--audit=nats", f"--audit-nats-addr={nats_server.url}", "--health-addr=127.0.0.1:0"],
    ).start()
    try:
        svc.wait_for("Starting to listen")
        publish(nats_server.url, [("accountats", b'{"id":"default"}')], subjects=["accountats"])
        wait_all_acked(nats_server.url, 1)
        assert svc.terminate(timeout=30) == 0
    finally:
        svc.stop()
    out = svc.output()
    assert "level=debug" in out  # the original's default level
    assert "differs from the durable name" not in out
    assert "event_id=default" in out


def test_a_different_consumer_name_is_warned_about(nats_server, tmp_path) -> None:
    svc = Service(tmp_path, base_args(nats_server.url, "--audit-consumer-name=other")).start()
    svc.wait_for("Starting to listen")
    assert svc.terminate() == 0
    assert re.search(
        r"level=warning msg=\"Consumer name differs from the durable name[^\n]*"
        r"consumer=other durable=events-audit-durable",
        svc.output(),
    )


def test_sigterm_mid_stream_loses_and_duplicates_nothing(nats_server, tmp_path, engine) -> None:
    """SIGTERM while events keep arriving: the first run logs some, a second
    run the rest; together every event exactly once."""
    total = 6000
    publish(nats_server.url, [])  # the stream
    args = base_args(
        nats_server.url,
        "--log-format=json",
        "--log-level=info",
        "--audit-pull-max-messages=10",
        engine=engine,
    )
    first = Service(tmp_path, args, name="first").start()
    first.wait_for("Starting to listen")
    publisher = threading.Thread(
        target=publish,
        args=(nats_server.url, [("events.s", b'{"id":"m-%d"}' % i) for i in range(total)]),
    )
    publisher.start()
    wait_until(lambda: len(event_lines(first)) >= 200, 30, "200 events")
    assert first.terminate() == 0
    publisher.join()
    handled_first = len(event_lines(first))
    assert handled_first < total, "the stream was drained before the signal"
    second = Service(tmp_path, args, name="second").start()
    try:
        wait_all_acked(nats_server.url, total, timeout=60)
        assert second.terminate() == 0
    finally:
        second.stop()
    sequences = [json.loads(line)["sequence"] for line in event_lines(first) + event_lines(second)]
    assert sorted(sequences) == list(range(1, total + 1))


def test_health_endpoint(nats_server, tmp_path) -> None:
    svc = Service(tmp_path, base_args(nats_server.url, "--log-level=info")).start()
    try:
        match = svc.wait_for(r'Health server listening" addr="\[(127\.0\.0\.1:\d+)\]"')
        with urllib.request.urlopen(f"http://{match.group(1)}/health", timeout=5) as response:
            assert response.status == 200
            assert json.loads(response.read()) == {"Status": "OK"}
        assert svc.terminate() == 0
    finally:
        svc.stop()


def test_audit_nope_exits_zero(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "events_audit", "--audit=nope"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert 'level=info msg="Audit is disabled, exiting"' in result.stderr


def test_audit_nsq_is_not_supported(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "events_audit", "--audit=nsq"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "not supported" in result.stderr


def test_text_is_coloured_exactly_on_a_terminal(nats_server, tmp_path, engine) -> None:
    publish(nats_server.url, [("events.t", b'{"id":"tty"}')])
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "events_audit",
            *base_args(nats_server.url, "--log-level=info", engine=engine),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
        cwd=ROOT,
    )
    os.close(secondary)
    output = b""
    try:
        wait_all_acked(nats_server.url, 1)
        proc.terminate()
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        os.close(primary)
    assert b"\x1b[36mINFO\x1b[0m[" in output
    assert b"Received structured event" in output and b"\x1b[36mevent_id\x1b[0m=tty" in output


def test_waits_for_nats_and_stops_on_a_signal_meanwhile(tmp_path) -> None:
    from test_examples import free_port

    svc = Service(tmp_path, base_args(f"nats://127.0.0.1:{free_port()}")).start()
    try:
        svc.wait_for(r'level=error msg="NATS error"')
        assert svc.terminate(timeout=10) == 0
    finally:
        svc.stop()
    assert "JetStream events audit server stopped" in svc.output()


def test_shutdown_is_bounded_when_the_server_is_gone(nats_server, tmp_path, engine) -> None:
    svc = Service(tmp_path, base_args(nats_server.url, "--log-level=info", engine=engine)).start()
    try:
        svc.wait_for("Starting to listen")
        nats_server.kill()
        svc.wait_for("Disconnected from NATS")
        started = time.monotonic()
        assert svc.terminate(timeout=30) == 0
        assert time.monotonic() - started < 15
    finally:
        svc.stop()
    assert "JetStream events audit server stopped" in svc.output()


@pytest.mark.parametrize("batch", [100, 10])
def test_fast_engine_keeps_a_deep_pull_pipeline(nats_server, tmp_path, batch) -> None:
    """The server can stream only as far as it is asked ahead: once it has
    seen that events are small, the fast engine keeps PULL_CREDIT messages'
    worth of requests waiting (before that, fewer requests with room for
    the largest message), and the consumer it creates has room for them and
    for as many being written."""
    from events_audit.engines.fast import FRAME_MARGIN, pull_shape
    from events_audit.jetstream import PULL_CREDIT, requests_in_flight

    svc = Service(
        tmp_path,
        base_args(nats_server.url, f"--audit-pull-max-messages={batch}", engine="fast"),
    ).start()
    try:
        svc.wait_for("Starting to listen")
        budget, largest = 8 << 20, (1 << 20) + FRAME_MARGIN  # the server's max_payload
        unknown, request_bytes = pull_shape(batch, budget, largest)
        assert request_bytes >= largest and unknown * request_bytes <= budget
        wait_until(
            lambda: consumer_info(nats_server.url).num_waiting == unknown,
            10,
            f"{unknown} waiting pull requests",
        )
        expected = requests_in_flight(batch)
        assert expected * batch >= min(PULL_CREDIT, 60 * batch)
        info = consumer_info(nats_server.url)
        assert info.config.max_ack_pending >= 2 * expected * batch
        # Used up and expired requests are replaced. The server fills waiting
        # requests round robin, so a burst leaves some partly filled while the
        # engine re-asks for what arrived: the same credit over a few more
        # requests until they expire (each expiry is re-issued at once, so
        # the count is polled, not read once).
        publish(nats_server.url, [(f"events.x{i}", b"raw") for i in range(3 * batch + 7)])
        wait_all_acked(nats_server.url, 3 * batch + 7)
        time.sleep(1.5)  # past --audit-pull-timeout=1s: every earlier request has ended
        wait_until(
            lambda: expected <= consumer_info(nats_server.url).num_waiting <= 2 * expected,
            10,
            f"{expected} to {2 * expected} waiting pull requests after a burst",
        )
        assert svc.terminate() == 0
    finally:
        svc.stop()


def test_large_messages_end_requests_by_bytes_not_by_refusal(nats_server, tmp_path, engine) -> None:
    """Messages near max_payload (1 MiB here), more than 64 MiB of them: the
    fast engine's requests carry max_bytes (its memory bound), so the server
    ends them early with 409 "Message Size Exceeds MaxBytes": a normal end,
    asked again at once, with no warning and no pause. Every message is
    logged once and acked."""
    count, size = 80, 950_000
    payloads = [(b"big-%d " % i).ljust(size, b"x") for i in range(count)]
    publish(nats_server.url, [("events.big", payload) for payload in payloads])
    svc = Service(tmp_path, base_args(nats_server.url, engine=engine)).start()
    try:
        wait_all_acked(nats_server.url, count, timeout=60)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    out = svc.output()
    assert "refused" not in out and "level=warning" not in out
    logged = sorted(int(m) for m in re.findall(r"big-(\d+) ", out))
    assert logged == list(range(count))


def test_a_full_max_waiting_is_no_trouble(nats_server, tmp_path) -> None:
    """Instances sharing a consumer can fill its max_waiting (512 by default).
    The server then drops the extra requests silently (no 409 for requests
    with an idle heartbeat): the fast engine goes on with those it took, no
    warning, no "pull went silent", and every event comes through."""
    from nats.js.api import AckPolicy

    create_consumer(
        nats_server.url, ack_policy=AckPolicy.EXPLICIT, filter_subject=TOPIC, max_waiting=5
    )
    svc = Service(tmp_path, base_args(nats_server.url, engine="fast")).start()
    try:
        svc.wait_for("Starting to listen")
        time.sleep(2.5)  # past two pull timeouts: re-issues would meet the limit again
        publish(nats_server.url, [("events.w", b'{"id":"w-%d"}' % i) for i in range(500)])
        wait_all_acked(nats_server.url, 500)
        assert consumer_info(nats_server.url).num_waiting <= 5
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert "level=warning" not in svc.output()
    assert len(event_lines(svc)) == 500
