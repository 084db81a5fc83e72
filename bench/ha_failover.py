"""Failover times of --audit-ha=pinned, measured end to end.

Each round: a fresh nats-server (from the wheel), three instances with
--audit-ha=pinned on one durable, events published live.  The active one is
killed with SIGKILL; the time until another instance writes its first event
line is the failover.  Then the new active one gets SIGTERM (it unpins after
its last batch); the time until a standby writes is the handover.  Event
lines are seen by reading the log files every 10 ms.  At the end every
published event must be in some file.

    python bench/ha_failover.py --rounds 5                 # --audit-ha-timeout 10s
    python bench/ha_failover.py --rounds 5 --timeout 3s

Prints every round and the medians.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import threading
import time
from pathlib import Path

import nats

from e2e import Server, Watcher, start_service
from events_audit.config import parse_duration

ROOT = Path(__file__).resolve().parent.parent
EVENT = (b"Received structured event", b"Received raw event")
MARKER = re.compile(rb'event_id="?e-(\d+)')


class Instance:
    def __init__(self, server: Server, name: str, timeout: str) -> None:
        self.log = server.dir / f"{name}.log"
        self.proc = start_service(
            server.url,
            self.log,
            "--audit-ha=pinned",
            f"--audit-ha-timeout={timeout}",
            "--stats-interval=0",
        )
        self.offset = 0
        self.events = 0
        self.last_seen = 0.0  # when its event count last grew
        self.first_after: dict[float, float] = {}

    def poll(self, now: float) -> None:
        try:
            with open(self.log, "rb") as handle:
                handle.seek(self.offset)
                data = handle.read()
        except FileNotFoundError:
            return
        cut = data.rfind(b"\n") + 1
        self.offset += cut
        grown = sum(data[:cut].count(marker) for marker in EVENT)
        if grown:
            self.events += grown
            self.last_seen = now


class Publisher(threading.Thread):
    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.url, self.rate = url, rate
        self.sent = 0
        self.halt = threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        nc = await nats.connect(self.url)
        js = nc.jetstream()
        started = time.monotonic()
        while not self.halt.is_set():
            try:
                await js.publish("events.x", b'{"id":"e-%d"}' % self.sent)
            except Exception:  # the stream is created by the first instance
                await asyncio.sleep(0.05)
                continue
            self.sent += 1
            ahead = self.sent / self.rate - (time.monotonic() - started)
            if ahead > 0.002:
                await asyncio.sleep(ahead)
        await nc.close()


def wait_for_writer(
    instances: dict[str, Instance], since: float, limit: float, old: str = ""
) -> str:
    """The first instance but ``old`` whose events grow after ``since``."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        now = time.monotonic()
        for name, instance in instances.items():
            before = instance.events
            instance.poll(now)
            if instance.events > before and now > since and name != old:
                return name
        time.sleep(0.01)
    raise RuntimeError(f"no instance wrote events within {limit}s")


def one_round(timeout: str, rate: float) -> dict:
    server = Server()
    instances = {n: Instance(server, n, timeout) for n in ("a", "b", "c")}
    publisher = Publisher(server.url, rate)
    try:
        publisher.start()
        active = wait_for_writer(instances, 0.0, 30)
        time.sleep(2.0)
        killed_at = time.monotonic()
        instances[active].proc.kill()
        instances[active].proc.wait()
        new = wait_for_writer(instances, killed_at, parse_duration(timeout) + 30, active)
        kill_failover = instances[new].last_seen - killed_at
        time.sleep(2.0)
        for instance in instances.values():
            instance.poll(time.monotonic())
        stopped_at = time.monotonic()
        instances[new].proc.terminate()
        taker = wait_for_writer(instances, stopped_at, 30, new)
        term_failover = instances[taker].last_seen - stopped_at
        instances[new].proc.wait(30)
        time.sleep(1.0)
        publisher.halt.set()
        publisher.join(10)
        watcher = Watcher(server.url)
        deadline = time.monotonic() + 60
        while watcher.acked("events-audit-durable")[0] < publisher.sent:
            if time.monotonic() > deadline:
                raise RuntimeError("not every event was acked")
            time.sleep(0.1)
        watcher.close()
        for instance in instances.values():
            instance.poll(time.monotonic())
        lines = sum(instance.events for instance in instances.values())
        logged = set()
        for instance in instances.values():
            logged.update(MARKER.findall(instance.log.read_bytes()))
        return {
            "timeout": timeout,
            "kill9_failover_s": round(kill_failover, 3),
            "sigterm_failover_s": round(term_failover, 3),
            "published": publisher.sent,
            "lines": lines,
            "duplicates": lines - len(logged),
            "lost": publisher.sent - len(logged & {b"%d" % i for i in range(publisher.sent)}),
        }
    finally:
        publisher.halt.set()
        for instance in instances.values():
            if instance.proc.poll() is None:
                instance.proc.kill()
                instance.proc.wait()
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--timeout", default="10s", help="--audit-ha-timeout")
    parser.add_argument("--rate", type=float, default=500.0, help="events a second")
    args = parser.parse_args()
    runs = []
    for round_no in range(args.rounds):
        result = one_round(args.timeout, args.rate)
        runs.append(result)
        print(json.dumps({"round": round_no, **result}), flush=True)
    kill = statistics.median(r["kill9_failover_s"] for r in runs)
    term = statistics.median(r["sigterm_failover_s"] for r in runs)
    lost = sum(r["lost"] for r in runs)
    print(
        f"\n--audit-ha-timeout={args.timeout}: failover after kill -9 {kill:.2f} s, "
        f"after SIGTERM {term:.3f} s (medians of {args.rounds}); lost {lost}"
    )
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
