"""End-to-end benchmark: a real nats-server, N preloaded messages, the service.

For every event size and every round: start a fresh nats-server on a free
loopback port with a temporary store and preload the messages (80 %
structured events, 20 % raw lines; not timed).  Then each candidate (engine
x log format, in an order that turns round by round) consumes the whole
stream through a durable of its own (``python -m events_audit`` writing to a
file) and is timed until the server shows every message acked.  Candidates
share the round's stream, so the machine's drift hits all of them alike;
medians are reported.

    python bench/e2e.py --n 40000 --rounds 3          # ~300-byte events
    python bench/e2e.py --sizes 1K,64K,1M --mb 100    # a size sweep
    make bench-e2e / make bench-sizes                 # the same, with defaults

Reported per candidate and size: msgs/s (N / spawn-to-all-acked), steady
msgs/s and MB/s of payload (first delivery to all acked), consumer CPU per
message (user+sys of the service from its first delivery), peak RSS (VmHWM),
and whether the log has exactly one line per message (every message carries
a marker, event-<n> or raw-<n>, and each must appear once).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import StreamConfig

from events_audit.config import parse_size

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")


def filler(rng: random.Random, size: int) -> str:
    """Printable words, exactly ``size`` characters."""
    words: list[str] = []
    length = 0
    while length < size:
        words.append(rng.choice(WORDS))
        length += len(words[-1]) + 1
    return " ".join(words)[:size]


def payloads(n: int, size: int = 0, seed: int = 1) -> list[bytes]:
    """N messages: 80 % structured events, 20 % raw lines; ``size`` pads
    each to that many bytes (0: natural, about 300 bytes)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if rng.random() < 0.8:
            event = {
                "id": f"event-{i}",
                "type": rng.choice(["user.action", "order.created", "audit.login"]),
                "source": rng.choice(["user-service", "billing", "gateway"]),
                "timestamp": "2025-01-11T10:30:00Z",
                "data": {
                    "action": "login",
                    "user_id": str(rng.randrange(10**6)),
                    "ip": f"10.0.{rng.randrange(256)}.{rng.randrange(256)}",
                    "amount": rng.randrange(10**5) / 100,
                    "ok": True,
                    "tags": ["a", "b"],
                    "note": "x" * rng.randrange(60, 120),
                },
            }
            body = json.dumps(event, separators=(",", ":")).encode()
            if size > len(body):
                event["data"]["note"] = filler(rng, size - len(body) + len(event["data"]["note"]))
                body = json.dumps(event, separators=(",", ":")).encode()
            out.append(body)
        else:
            line = f"raw-{i} plain text audit line from host-{rng.randrange(99)}"
            if size > len(line) + 1:
                line += " " + filler(rng, size - len(line) - 1)
            out.append(line.encode())
    return out


class Server:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ea-bench-"))
        ports = self.dir / "ports"
        ports.mkdir()
        binary = shutil.which("nats-server", path=os.path.dirname(sys.executable))
        self.proc = subprocess.Popen(
            [
                binary,
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                "-1",
                "-sd",
                str(self.dir / "store"),
                "--ports_file_dir",
                str(ports),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            found = list(ports.glob("*.ports"))
            if found and found[0].read_text().strip():
                info = json.loads(found[0].read_text())
                self.url = info["nats"][0]
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
            time.sleep(0.02)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


async def preload(url: str, data: list[bytes]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name="EVENTS", subjects=["events.>"]))
    # publishes in flight: 500, or fewer for large messages (at most ~8 MB)
    step = max(1, min(500, (8 << 20) // max(1, max(len(p) for p in data))))
    for start in range(0, len(data), step):
        await asyncio.gather(
            *(
                js.publish("events.event" if payload[:1] == b"{" else "events.raw", payload)
                for payload in data[start : start + step]
            )
        )
    await nc.close()


class Watcher:
    """One connection that asks the server how far a durable has acked."""

    def __init__(self, url: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.nc = self.loop.run_until_complete(nats.connect(url))

    def acked(self, durable: str) -> tuple[int, int]:
        async def ask() -> tuple[int, int]:
            try:
                info = await self.nc.jetstream().consumer_info("EVENTS", durable, timeout=2)
            except Exception:
                return 0, 0
            return info.ack_floor.stream_seq, info.delivered.stream_seq

        return self.loop.run_until_complete(ask())

    def close(self) -> None:
        self.loop.run_until_complete(self.nc.close())
        self.loop.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


MARKER = re.compile(rb"(?:event|raw)-(\d+)")


def lines_exactly_once(log: Path, n: int) -> bool:
    """Every message's marker in exactly one line, and nothing else logged as an event."""
    seen = bytearray(n)
    count = 0
    with open(log, "rb") as lines:
        for line in lines:
            if b"Received structured event" not in line and b"Received raw event" not in line:
                continue
            count += 1
            match = MARKER.search(line)
            if not match or int(match.group(1)) >= n or seen[int(match.group(1))]:
                return False
            seen[int(match.group(1))] = 1
    return count == n


def start_service(url: str, log: Path, *extra: str) -> subprocess.Popen:
    """``python -m events_audit`` on the stream, at info level, into ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_LISTNER_")}
    args = [
        sys.executable,
        "-m",
        "events_audit",
        "--audit=nats",
        f"--audit-nats-addr={url}",
        "--audit-topic=events.>",
        "--log-level=info",
        f"--log-output={log}",
        "--health-addr=",
        *extra,
    ]
    return subprocess.Popen(args, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)


def run_one(
    server: Server,
    engine: str,
    fmt: str,
    n: int,
    batch: int,
    size: int,
    nbytes: int,
    ha: str = "none",
):
    durable = f"bench-{engine}-{fmt}" + ("" if ha == "none" else f"-{ha}")
    log = server.dir / f"{durable}.log"
    watcher = Watcher(server.url)
    started = time.monotonic()
    proc = start_service(
        server.url,
        log,
        f"--audit-durable-name={durable}",
        f"--audit-consumer-name={durable}",
        f"--audit-pull-max-messages={batch}",
        f"--log-format={fmt}",
        f"--audit-engine={engine}",
        f"--audit-ha={ha}",
    )
    first = cpu_first = None
    server_first = 0.0
    try:
        while True:
            done, delivered = watcher.acked(durable)
            now = time.monotonic()
            if first is None and delivered > 0:
                first, cpu_first = now, cpu_seconds(proc.pid)
                server_first = cpu_seconds(server.proc.pid)
            if done >= n:
                break
            if now - started > 300 or proc.poll() is not None:
                raise RuntimeError(f"{engine}/{fmt}: not done ({done}/{n})")
            time.sleep(0.005)
        seconds = now - started
        cpu = cpu_seconds(proc.pid) - (cpu_first or 0.0)
        server_cpu = cpu_seconds(server.proc.pid) - server_first
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        watcher.close()
    steady = max(now - (first or started), 1e-9)
    result = {
        "engine": engine,
        "format": fmt,
        "ha": ha,
        "size": size,
        "n": n,
        "seconds": seconds,
        "msgs_per_s": n / seconds,
        "steady_msgs_per_s": n / steady,
        "steady_mb_per_s": nbytes / steady / 1e6,
        "cpu_us_per_msg": cpu / n * 1e6,
        "server_cpu_us_per_msg": server_cpu / n * 1e6,
        "peak_rss_mb": rss,
        "lines_ok": lines_exactly_once(log, n),
    }
    log.unlink()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40000, help="messages (without --sizes)")
    parser.add_argument("--sizes", default="", help="event sizes, e.g. 256,1K,64K,1M")
    parser.add_argument("--mb", type=float, default=100, help="MB of events per size")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="fast,python")
    parser.add_argument("--formats", default="json,text")
    parser.add_argument(
        "--ha", default="none", help="--audit-ha values to compare, e.g. none,pinned (fast only)"
    )
    parser.add_argument("--json-out", help="append every run as a JSON line")
    args = parser.parse_args()
    try:
        sizes = [parse_size(s) for s in args.sizes.split(",")] if args.sizes else [0]
    except ValueError:
        parser.error(f"--sizes: not a list of sizes: {args.sizes!r}")
    candidates = [
        (e, f, h)
        for e in args.engines.split(",")
        for f in args.formats.split(",")
        for h in args.ha.split(",")
        if not (h == "pinned" and e == "python")  # (the python engine refuses it)
    ]
    results: dict[tuple[int, str, str, str], list[dict]] = {}
    for size in sizes:
        n = max(100, int(args.mb * 1e6 / size)) if size else args.n
        data = payloads(n, size)
        nbytes = sum(len(p) for p in data)
        for round_no in range(args.rounds):
            server = Server()
            try:
                asyncio.run(preload(server.url, data))
                turn = round_no % len(candidates)  # who goes first moves on each round
                for engine, fmt, ha in candidates[turn:] + candidates[:turn]:
                    result = run_one(server, engine, fmt, n, args.batch, size, nbytes, ha)
                    results.setdefault((size, engine, fmt, ha), []).append(result)
                    print(json.dumps({"round": round_no, **result}), flush=True)
                    if args.json_out:
                        with open(args.json_out, "a") as out:
                            out.write(json.dumps({"round": round_no, **result}) + "\n")
            finally:
                server.close()
    print(
        f"\n{'size':>7} {'engine':8} {'format':6} {'ha':6} {'N':>7} {'msgs/s':>9} {'steady/s':>9} "
        f"{'MB/s':>6} {'us/msg':>8} {'rss MB':>6} lines_ok   (medians of {args.rounds} rounds, "
        f"batch {args.batch})"
    )
    ok = True
    for (size, engine, fmt, ha), runs in results.items():
        med = {
            k: statistics.median(r[k] for r in runs)
            for k in (
                "msgs_per_s",
                "steady_msgs_per_s",
                "steady_mb_per_s",
                "cpu_us_per_msg",
                "peak_rss_mb",
            )
        }
        lines_ok = all(r["lines_ok"] for r in runs)
        ok &= lines_ok
        print(
            f"{size or '~300':>7} {engine:8} {fmt:6} {ha:6} {runs[0]['n']:7d} "
            f"{med['msgs_per_s']:9.0f} "
            f"{med['steady_msgs_per_s']:9.0f} {med['steady_mb_per_s']:6.1f} "
            f"{med['cpu_us_per_msg']:8.2f} {med['peak_rss_mb']:6.1f} {lines_ok}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
