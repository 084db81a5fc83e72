"""--audit-ha=pinned: one instance writes the stream in order, the others
stand by; kill -9 and SIGTERM hand the pin over, nothing is lost.

Real nats-server (>= 2.11, from the wheel), real processes, live events.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from events_audit.records import parse_line
from servers import (
    ROOT,
    Publisher,
    Service,
    consumer_info,
    publish,
    run_async,
    wait_all_acked,
    wait_until,
)
from test_operate import health_addr, http_get, scrape
from test_service import base_args

HA_TIMEOUT = 3.0
RATE = 250.0  # events a second, live


def ha_args(url: str, *extra: str) -> list[str]:
    return base_args(
        url,
        "--audit-ha=pinned",
        f"--audit-ha-timeout={HA_TIMEOUT:g}s",
        "--audit-ack-wait=4s",
        "--log-level=info",
        *extra,
    )


class EventTail(threading.Thread):
    """Reads the instances' log files as they grow: when each event line was
    first seen there (every 20 ms), with its sequence and delivery count."""

    def __init__(self, services: dict[str, Service]) -> None:
        super().__init__(daemon=True)
        self.services = services
        self.seen: dict[str, list[tuple[float, int, int]]] = {name: [] for name in services}
        self._offsets = {name: 0 for name in services}
        self._rest = {name: b"" for name in services}
        self._halted = threading.Event()
        self.lock = threading.Lock()

    def poll(self) -> None:
        now = time.monotonic()
        with self.lock:
            for name, service in self.services.items():
                try:
                    with open(service.log_path, "rb") as handle:
                        handle.seek(self._offsets[name])
                        data = handle.read()
                except FileNotFoundError:
                    continue
                self._offsets[name] += len(data)
                *lines, self._rest[name] = (self._rest[name] + data).split(b"\n")
                for line in lines:
                    entry = parse_line(line)
                    if entry is not None and entry.is_event:
                        self.seen[name].append(
                            (now, entry.number("sequence"), entry.number("delivered"))
                        )

    def run(self) -> None:
        while not self._halted.is_set():
            self.poll()
            time.sleep(0.02)

    def stop(self) -> None:
        self._halted.set()
        self.join(5)
        self.poll()

    def writing_since(self, since: float) -> list[str]:
        with self.lock:
            return [n for n, seen in self.seen.items() if seen and seen[-1][0] > since]

    def first_after(self, name: str, since: float) -> float | None:
        with self.lock:
            return next((t for t, _, _ in self.seen[name] if t > since), None)


def overlaps(tail: EventTail, bucket: float = 0.1) -> list[float]:
    """Start times of the 100 ms windows in which more than one instance wrote."""
    writers: dict[int, set[str]] = {}
    for name, seen in tail.seen.items():
        for t, _, _ in seen:
            writers.setdefault(int(t / bucket), set()).add(name)
    return sorted(k * bucket for k, names in writers.items() if len(names) > 1)


def assert_in_order(tail: EventTail) -> None:
    """Within each file, first deliveries ascend (redeliveries are the
    messages of a killed instance, coming back after the ack wait)."""
    for name, seen in tail.seen.items():
        first = [sequence for _, sequence, delivered in seen if delivered == 1]
        assert first == sorted(first) and len(first) == len(set(first)), name


def sequences(tail: EventTail) -> list[int]:
    return [sequence for seen in tail.seen.values() for _, sequence, _ in seen]


def take_over(tail: EventTail, old: str, since: float, timeout: float) -> tuple[str, float]:
    """The instance that writes events after ``since`` (not ``old``), and when."""

    def found():
        for name in tail.writing_since(since):
            if name != old:
                return name, tail.first_after(name, since)
        return None

    return wait_until(found, timeout, f"a standby taking over from {old}", interval=0.02)


@contextlib.contextmanager
def live(tmp_path: Path, url: str, names: list[str], seconds: float, *extra: str):
    """Instances with --audit-ha=pinned, their event tail, and a publisher
    sending RATE events a second for ``seconds``; all stopped at the end."""
    services = {name: Service(tmp_path, ha_args(url, *extra), name=name).start() for name in names}
    tail = EventTail(dict(services))
    publisher = Publisher(url, int(RATE * seconds), rate=RATE)
    try:
        for service in services.values():
            service.wait_for("Starting to listen for JetStream events")
        tail.start()
        publisher.start()
        yield services, tail, publisher
    finally:
        publisher.halt()
        if tail.is_alive():
            tail.stop()
        for service in services.values():
            service.stop()


def test_kill_9_twice_then_all_events_are_in_order(nats_server, tmp_path) -> None:
    """Three instances, events arriving live: one writes, two stand by; the
    active one killed twice, each time a standby writes on within the timeout
    + 2 s; every event is in some file, in stream order within each."""
    with live(tmp_path, nats_server.url, ["a", "b", "c"], 16, "--stats-interval=1s") as (
        services,
        tail,
        publisher,
    ):
        active, _ = take_over(tail, "", 0.0, 15)
        # the standbys: nothing written, ready, and saying what they are
        time.sleep(1.5)
        assert tail.writing_since(0.0) == [active]
        standby = next(name for name in services if name != active)
        addr = health_addr(services[standby])
        status, body = http_get(addr, "/ready")
        assert status == 200 and json.loads(body)["role"] == "standby"
        values = scrape(addr)
        assert values["events_audit_ha_active"] == 0
        assert values["events_audit_ha_failovers_total"] == 0
        assert scrape(health_addr(services[active]))["events_audit_ha_active"] == 1
        assert json.loads(http_get(health_addr(services[active]), "/ready")[1])["role"] == "active"
        services[standby].wait_for(r'msg="Audit stats".* stats_role=standby', 5)
        services[active].wait_for(r'msg="Audit stats".* stats_role=active', 5)
        services[standby].wait_for(
            r'msg="Standing by \(another instance is pinned\)" consumer=events-audit-durable '
            r"group=audit pin_id=\w+ stream=EVENTS",
            5,
        )
        services[active].wait_for(
            r'msg="Became the active instance \(pinned\)" consumer=events-audit-durable '
            r"group=audit pin_id=\w+ stream=EVENTS",
            5,
        )

        failovers = []
        for _ in range(2):
            killed_at = time.monotonic()
            services[active].kill()
            new, first = take_over(tail, active, killed_at, HA_TIMEOUT + 10)
            failovers.append(first - killed_at)
            assert new != active
            active = new
            time.sleep(1.0)
        print(f"failover after kill -9: {[round(f, 2) for f in failovers]} s")
        assert all(f <= HA_TIMEOUT + 2 for f in failovers), failovers
        assert scrape(health_addr(services[active]))["events_audit_ha_failovers_total"] == 1

        publisher.finish(60)
        total = len(publisher.acked)
        wait_all_acked(nats_server.url, total, timeout=30)
        assert services[active].terminate() == 0
        tail.stop()
        # exactly one instance wrote at a time: kill -9 leaves no overlap
        assert overlaps(tail) == []
        assert_in_order(tail)
        assert set(sequences(tail)) == set(range(1, total + 1))
        report = subprocess.run(
            [
                sys.executable,
                "-m",
                "events_audit",
                "verify",
                f"--audit-nats-addr={nats_server.url}",
                *[str(s.log_path) for s in services.values()],
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        assert report.returncode == 0, report.stdout + report.stderr


def test_sigterm_hands_over_at_once_without_duplicates(nats_server, tmp_path) -> None:
    """SIGTERM of the active instance: it unpins after its last batch and a
    standby writes on within 2 s; no event twice, none redelivered."""
    with live(tmp_path, nats_server.url, ["a", "b"], 6) as (services, tail, publisher):
        active, _ = take_over(tail, "", 0.0, 15)
        time.sleep(1.5)
        stopped_at = time.monotonic()
        services[active].proc.send_signal(15)
        new, first = take_over(tail, active, stopped_at, 10)
        assert services[active].proc.wait(10) == 0
        print(f"failover after SIGTERM: {first - stopped_at:.3f} s")
        assert first - stopped_at <= 2.0
        services[active].wait_for("Unpinned for the shutdown")
        publisher.finish(60)
        total = len(publisher.acked)
        wait_all_acked(nats_server.url, total, timeout=20)
        tail.stop()
        logged = sequences(tail)
        assert sorted(logged) == list(range(1, total + 1))  # each once
        assert all(delivered == 1 for seen in tail.seen.values() for _, _, delivered in seen)
        assert_in_order(tail)
        windows = overlaps(tail)
        print(f"100 ms windows with two writers: {len(windows)}")
        assert all(abs(w - stopped_at) < 1.0 for w in windows)


def test_a_frozen_active_instance_loses_the_pin_and_stands_by(nats_server, tmp_path) -> None:
    """SIGSTOP beyond the timeout: the standby writes on; the frozen one,
    woken up, gets 423 for its pulls and stands by; nothing is lost."""
    with live(tmp_path, nats_server.url, ["a", "b"], 12) as (services, tail, publisher):
        active, _ = take_over(tail, "", 0.0, 15)
        time.sleep(1.0)
        frozen_at = time.monotonic()
        services[active].proc.send_signal(signal.SIGSTOP)
        new, first = take_over(tail, active, frozen_at, HA_TIMEOUT + 10)
        assert first - frozen_at <= HA_TIMEOUT + 2
        time.sleep(1.0)
        services[active].proc.send_signal(signal.SIGCONT)
        services[active].wait_for(r'level=warning msg="Lost the pin, standing by"', 10)
        services[active].wait_for(r"Standing by \(another instance is pinned\)", 10)
        assert json.loads(http_get(health_addr(services[active]), "/ready")[1])["role"] == "standby"
        woke = time.monotonic()
        time.sleep(2.0)
        # the woken one wrote at most what it held before the freeze
        late = [s for t, s, _ in tail.seen[active] if t > woke]
        assert not late or max(late) < min(s for t, s, _ in tail.seen[new] if t > frozen_at)
        publisher.finish(60)
        total = len(publisher.acked)
        wait_all_acked(nats_server.url, total, timeout=30)
        tail.stop()
        assert set(sequences(tail)) == set(range(1, total + 1))
        assert_in_order(tail)


async def _plain_consumer(url: str, durable: str) -> None:
    import nats
    from nats.js.api import ConsumerConfig

    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_consumer(
            "EVENTS", ConsumerConfig(durable_name=durable, ack_policy="explicit")
        )
    finally:
        await nc.close()


def test_a_consumer_without_the_group_is_refused(nats_server, tmp_path) -> None:
    """A consumer made earlier without a priority group: exit 2 and a line that
    says what to do; a pinned one started without --audit-ha: the same."""
    publish(nats_server.url, [("events.x", b"1")])
    run_async(_plain_consumer(nats_server.url, "events-audit-durable"))
    svc = Service(tmp_path, ha_args(nats_server.url), name="plain").start()
    assert svc.proc.wait(20) == 2
    line = svc.wait_for(r"level=error msg=\"Cannot run as configured\" error=.*").group(0)
    assert "priority_policy none, not pinned_client" in line
    assert "nats consumer rm EVENTS events-audit-durable" in line
    assert "Traceback" not in svc.output()
    assert consumer_info(nats_server.url).num_ack_pending == 0  # nothing pulled

    pinned = Service(tmp_path, ha_args(nats_server.url, "--audit-durable-name=p"), name="p")
    pinned.start().wait_for("Starting to listen")
    assert pinned.terminate() == 0
    unpinned = Service(
        tmp_path, base_args(nats_server.url, "--audit-durable-name=p"), name="unpinned"
    ).start()
    assert unpinned.proc.wait(20) == 2
    line = unpinned.wait_for(r"msg=\"Cannot run as configured\" error=.*").group(0)
    assert "start with --audit-ha=pinned --audit-ha-group=audit" in line
    other_group = Service(
        tmp_path,
        ha_args(nats_server.url, "--audit-durable-name=p", "--audit-ha-group=other"),
        name="other",
    ).start()
    assert other_group.proc.wait(20) == 2
    assert "use --audit-ha-group=audit" in other_group.output()


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["--audit-engine=python"], "--audit-ha=pinned needs the fast engine"),
        (["--audit-ha-group=a.b"], "is not a priority group name"),
        (["--audit-ha-timeout=500ms"], "too short"),
        (["--audit-ha=active"], "is not one of none, pinned"),
    ],
)
def test_bad_ha_settings_are_one_line(tmp_path, extra, expected) -> None:
    args = ["--audit=nats", "--audit-nats-addr=nats://127.0.0.1:1", "--audit-ha=pinned", *extra]
    done = subprocess.run(
        [sys.executable, "-m", "events_audit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
    )
    assert done.returncode == 2
    assert expected in done.stderr and len(done.stderr.strip().splitlines()) == 1
