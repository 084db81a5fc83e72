"""End-to-end benchmark: a real nats-server, N preloaded messages, the service.

For every candidate (engine x log format) and every round: start a fresh
nats-server on a free loopback port with a temporary store, preload N
messages (80 % structured events of about 300 bytes, 20 % raw lines; not
timed), start ``python -m events_audit`` writing to a file, and time it until
the server shows every message acked.  Candidates are interleaved round by
round so the machine's drift hits all of them alike; medians are reported.

    python bench/e2e.py --n 40000 --rounds 3
    make bench-e2e                     # the same, with the defaults

Reported per candidate: msgs/s (N / spawn-to-all-acked), steady msgs/s
(first delivery to all acked), consumer CPU per message (user+sys of the
service from its first delivery), peak RSS (VmHWM), and whether the log has
exactly one line per message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nats
from nats.js.api import StreamConfig

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def payloads(n: int, seed: int = 1) -> list[bytes]:
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
            out.append(json.dumps(event, separators=(",", ":")).encode())
        else:
            out.append(f"raw-{i} plain text audit line from host-{rng.randrange(99)}".encode())
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
    for start in range(0, len(data), 500):  # 500 publishes in flight at a time
        await asyncio.gather(
            *(
                js.publish("events.event" if payload[:1] == b"{" else "events.raw", payload)
                for payload in data[start : start + 500]
            )
        )
    await nc.close()


async def acked(url: str) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info("EVENTS", "events-audit-durable")
        return info.ack_floor.stream_seq, info.delivered.stream_seq
    except Exception:
        return 0, 0
    finally:
        await nc.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_one(engine: str, fmt: str, n: int, batch: int, data: list[bytes]) -> dict:
    server = Server()
    try:
        asyncio.run(preload(server.url, data))
        log = server.dir / "audit.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_LISTNER_")}
        args = [
            sys.executable,
            "-m",
            "events_audit",
            "--audit=nats",
            f"--audit-nats-addr={server.url}",
            "--audit-topic=events.>",
            f"--audit-pull-max-messages={batch}",
            "--log-level=info",
            f"--log-format={fmt}",
            f"--log-output={log}",
            "--health-addr=",
            f"--audit-engine={engine}",
        ]
        started = time.monotonic()
        proc = subprocess.Popen(args, env=env, cwd=ROOT, stderr=subprocess.DEVNULL)
        first = cpu_first = None
        while True:
            done, delivered = asyncio.run(acked(server.url))
            now = time.monotonic()
            if first is None and delivered > 0:
                first, cpu_first = now, cpu_seconds(proc.pid)
            if done >= n:
                break
            if now - started > 120 or proc.poll() is not None:
                raise RuntimeError(f"{engine}/{fmt}: not done ({done}/{n})")
            time.sleep(0.01)
        seconds = now - started
        cpu = cpu_seconds(proc.pid) - (cpu_first or 0.0)
        rss = peak_rss_mb(proc.pid)
        proc.terminate()
        proc.wait(timeout=30)
        lines = sum(
            1
            for line in log.read_bytes().split(b"\n")
            if b"Received structured event" in line or b"Received raw event" in line
        )
        return {
            "engine": engine,
            "format": fmt,
            "n": n,
            "seconds": seconds,
            "msgs_per_s": n / seconds,
            "steady_msgs_per_s": n / max(now - first, 1e-9),
            "cpu_us_per_msg": cpu / n * 1e6,
            "peak_rss_mb": rss,
            "lines_ok": lines == n,
        }
    finally:
        server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", default="fast,python")
    parser.add_argument("--formats", default="json,text")
    parser.add_argument("--json-out", help="append every run as a JSON line")
    args = parser.parse_args()
    data = payloads(args.n)
    candidates = [(e, f) for e in args.engines.split(",") for f in args.formats.split(",")]
    results: dict[tuple[str, str], list[dict]] = {c: [] for c in candidates}
    for round_no in range(args.rounds):
        for engine, fmt in candidates:
            result = run_one(engine, fmt, args.n, args.batch, data)
            results[(engine, fmt)].append(result)
            print(json.dumps({"round": round_no, **result}), flush=True)
            if args.json_out:
                with open(args.json_out, "a") as out:
                    out.write(json.dumps({"round": round_no, **result}) + "\n")
    print(
        f"\n{'engine':8} {'format':6} {'msgs/s':>10} {'steady/s':>10} {'cpu us/msg':>10} "
        f"{'rss MB':>7} lines_ok   (medians of {args.rounds} rounds, N={args.n}, "
        f"batch {args.batch})"
    )
    ok = True
    for (engine, fmt), runs in results.items():
        med = {
            k: statistics.median(r[k] for r in runs)
            for k in ("msgs_per_s", "steady_msgs_per_s", "cpu_us_per_msg", "peak_rss_mb")
        }
        lines_ok = all(r["lines_ok"] for r in runs)
        ok &= lines_ok
        print(
            f"{engine:8} {fmt:6} {med['msgs_per_s']:10.0f} {med['steady_msgs_per_s']:10.0f} "
            f"{med['cpu_us_per_msg']:10.2f} {med['peak_rss_mb']:7.1f} {lines_ok}"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
