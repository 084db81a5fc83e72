"""`make image-test`: run the FROM-scratch image against a real nats-server.

    .venv/bin/python packaging/image_test.py --buildah "buildah --storage-driver vfs ..." \\
        --image localhost/events-audit:image-test --executable build/executable/events-audit

1. the image: its size, entrypoint, user and exposed port (buildah inspect);
2. a nats-server with JetStream (from the venv) on a free loopback port;
3. the service run from the image with `buildah run --isolation chroot` (host
   network: the chroot shares this machine's loopback), configured through
   AUDIT_LISTNER_* variables: the bundle self-check, --version timings, then
   the service: N events published (half structured, half raw), every one
   must come out as a JSON line, the consumer must have nothing pending or
   unacked, /health must answer, SIGTERM must stop it with exit code 0;
4. the same with the extracted executable run directly, for comparison.

If `buildah run` cannot reach the loopback nats-server, this is said and the
direct run alone decides.  Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import nats

# The test suite's server fixture and helpers (tests/servers.py: stdlib + nats).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import NatsServer, free_port, wait_until  # noqa: E402

STREAM = "IMAGETEST"
TOPIC = "imagetest.>"
LISTEN = "Starting to listen for JetStream events"


class Failure(Exception):
    pass


class Unreachable(Failure):
    """The service could not reach the nats-server (network isolation)."""


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05):
    try:
        return wait_until(predicate, timeout, what, interval)
    except AssertionError as exc:  # a failure of the image, reported as such
        raise Failure(str(exc)) from None


class Runner:
    """How to start the executable: through `buildah run` or directly."""

    name = ""
    forwards_sigterm = True

    def command(self, args: list[str], env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class BuildahRunner(Runner):
    name = "buildah run --isolation chroot"
    forwards_sigterm = False

    def __init__(self, buildah: list[str], image: str) -> None:
        self.buildah = buildah
        out = subprocess.run(
            [*buildah, "from", "--name", f"events-audit-image-test-{os.getpid()}", image],
            capture_output=True,
            text=True,
            check=True,
        )
        self.container = out.stdout.strip().splitlines()[-1]

    def command(self, args, env):
        envs = [f"--env={k}={v}" for k, v in env.items()]
        argv = [*self.buildah, "run", "--isolation", "chroot", "--network", "host", *envs]
        return [*argv, self.container, "--", "/events-audit", *args], dict(os.environ)

    def close(self) -> None:
        subprocess.run([*self.buildah, "rm", self.container], capture_output=True)


class DirectRunner(Runner):
    name = "executable run directly"

    def __init__(self, executable: Path) -> None:
        self.executable = str(executable.resolve())

    def command(self, args, env):
        # A clean environment, as in the image: only TMPDIR and the settings.
        return [self.executable, *args], {"TMPDIR": tempfile.gettempdir(), **env}


def timed_version(runner: Runner, rounds: int = 5) -> tuple[float, float, str]:
    times = []
    text = ""
    for _ in range(rounds):
        argv, env = runner.command(["--version"], {})
        start = time.perf_counter()
        out = subprocess.run(argv, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if out.returncode != 0:
            raise Failure(f"--version: rc {out.returncode}: {out.stderr.strip()[-500:]}")
        text = out.stdout.strip()
    return min(times), statistics.median(times), text


def bundle_check(runner: Runner) -> dict:
    argv, env = runner.command([], {"EVENTS_AUDIT_BUNDLE_CHECK": "1"})
    out = subprocess.run(argv, env=env, capture_output=True, text=True)
    try:
        report = json.loads(out.stdout)
    except ValueError:
        raise Failure(
            f"bundle check printed no JSON (rc {out.returncode}): {out.stderr[-500:]}"
        ) from None
    if out.returncode != 0 or not report.get("ok"):
        raise Failure(f"bundle check failed: {json.dumps(report)}")
    return report


class Service:
    def __init__(self, runner: Runner, server: NatsServer, marker: str) -> None:
        self.health_port = free_port()
        settings = {
            "AUDIT_LISTNER_AUDIT": "nats",
            "AUDIT_LISTNER_AUDIT_NATS_ADDR": server.url,
            "AUDIT_LISTNER_AUDIT_TOPIC": TOPIC,
            "AUDIT_LISTNER_AUDIT_STREAM_NAME": STREAM,
            "AUDIT_LISTNER_LOG_FORMAT": "json",
            "AUDIT_LISTNER_LOG_LEVEL": "info",
            "AUDIT_LISTNER_LOG_OUTPUT": "stdout",
            "AUDIT_LISTNER_AUDIT_PULL_TIMEOUT": "1s",
            "AUDIT_LISTNER_HEALTH_ADDR": f"127.0.0.1:{self.health_port}",
        }
        # The marker (a command-line flag) finds the service's processes in /proc.
        self.durable = marker
        argv, env = runner.command([f"--audit-durable-name={marker}"], settings)
        self.lines: list[tuple[float, str]] = []
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append((time.perf_counter() - self.started, raw.decode("utf-8", "replace")))

    def entries(self) -> list[dict]:
        result = []
        for _, line in list(self.lines):
            try:
                result.append(json.loads(line))
            except ValueError:
                pass
        return result

    def seen(self, message: str) -> float | None:
        for at, line in list(self.lines):
            if message in line:
                return at
        return None

    def pids(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            # the executable (staticx), its unpacked PyInstaller program and that one's
            # child; not the `buildah run` processes that carry the same arguments
            if f"--audit-durable-name={self.durable}".encode() in cmdline and os.path.basename(
                cmdline[0]
            ) in (b"events-audit", b"events-audit-dynamic"):
                found.append(int(entry.name))
        return found

    def outermost(self) -> list[int]:
        """The service's first process (staticx and PyInstaller each start a child)."""
        pids = set(self.pids())
        return [pid for pid in pids if _parent(pid) not in pids]

    def stop(self, runner: Runner, timeout: float = 15) -> tuple[int | None, str]:
        """SIGTERM, as a container engine sends it, to the service's first process."""
        if runner.forwards_sigterm:
            how = "SIGTERM to the executable"
            self.proc.send_signal(signal.SIGTERM)
        else:
            # `buildah run` does not forward SIGTERM (it kills its child): signal the
            # container's process itself, as `docker stop` does.
            targets = self.outermost()
            how = f"SIGTERM to the container's process {targets}"
            for pid in targets:
                os.kill(pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout), how
        except subprocess.TimeoutExpired:
            # the service's processes too: `buildah run` may not take them down with it
            for pid in self.pids():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None, how + ": no exit, killed"


def _parent(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def uids(pids: list[int]) -> set[int]:
    result = set()
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("Uid:"):
                    result.add(int(line.split()[1]))
        except OSError:
            pass
    return result


async def publish(url: str, count: int) -> list[str]:
    nc = await nats.connect(url)
    js = nc.jetstream()
    subjects = []
    for i in range(count):
        subject = f"imagetest.{'structured' if i % 2 == 0 else 'raw'}.{i}"
        if i % 2 == 0:
            payload = json.dumps(
                {
                    "id": f"image-test-{i}",
                    "type": "image.test",
                    "source": "image-test",
                    "timestamp": "2024-01-02T03:04:05Z",
                    "data": {"n": i},
                }
            ).encode()
        else:
            payload = f"raw event {i}".encode()
        ack = await js.publish(subject, payload, stream=STREAM)
        assert ack.seq == i + 1, ack
        subjects.append(subject)
    await nc.close()
    return subjects


async def consumer_state(url: str, durable: str) -> dict:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info(STREAM, durable)
    finally:
        await nc.close()
    return {
        "num_pending": info.num_pending,
        "num_ack_pending": info.num_ack_pending,
        "delivered": info.delivered.stream_seq,
        "ack_floor": info.ack_floor.stream_seq,
        "redelivered": info.num_redelivered,
    }


def run_service(runner: Runner, workdir: Path, count: int) -> dict:
    server = NatsServer(workdir, name="nats").start()
    marker = f"image-test-{os.getpid()}-{int(time.time() * 1000) % 100000}"
    service = Service(runner, server, marker)
    result: dict = {"runner": runner.name}
    try:
        try:
            wait_for(lambda: service.seen(LISTEN) or service.proc.poll() is not None, 30, LISTEN)
        except Failure:
            pass
        if service.seen(LISTEN) is None:
            text = "".join(line for _, line in service.lines)[-1500:]
            if "Failed to connect to NATS" in text or "NATS error" in text:
                raise Unreachable(f"the service could not reach {server.url}: {text}")
            raise Failure(f"no '{LISTEN}' line (rc {service.proc.poll()}): {text}")
        result["first_line_s"] = service.lines[0][0]
        result["listening_s"] = service.seen(LISTEN)
        listen = next(e for e in service.entries() if e.get("msg") == LISTEN)
        result["engine"] = listen.get("engine", "python")
        result["uids"] = sorted(uids(service.pids()))
        subjects = asyncio.run(publish(server.url, count))

        def logged():
            got = [
                e
                for e in service.entries()
                if e.get("msg", "").startswith("Received ") and e.get("subject") in subjects
            ]
            return got if len(got) >= count else None

        events = wait_for(logged, 15, f"{count} event lines")
        structured = sum(e["msg"] == "Received structured event" for e in events)
        if (
            sorted(e["subject"] for e in events) != sorted(subjects)
            or structured != (count + 1) // 2
        ):
            raise Failure(f"unexpected event lines: {events}")
        if sorted(e["sequence"] for e in events) != list(range(1, count + 1)):
            raise Failure(f"unexpected sequences: {[e.get('sequence') for e in events]}")

        def settled():
            state = asyncio.run(consumer_state(server.url, marker))
            done = (state["num_ack_pending"], state["num_pending"], state["ack_floor"]) == (
                0,
                0,
                count,
            )
            return state if done else None

        result["consumer"] = wait_for(settled, 15, "every event acked", interval=0.2)
        with urllib.request.urlopen(
            f"http://127.0.0.1:{service.health_port}/health", timeout=5
        ) as response:
            result["health"] = f"{response.status} {response.read().decode().strip()}"
        result["events"] = {"published": count, "logged": len(events), "structured": structured}
    finally:
        rc, how = service.stop(runner)
        server.stop()
    result["exit"] = {
        "code": rc,
        "how": how,
        "stopped_line": service.seen("JetStream events audit server stopped") is not None,
    }
    (workdir / "service.log").write_text("".join(line for _, line in service.lines))
    if rc != 0 or not result["exit"]["stopped_line"]:
        raise Failure(f"the service did not stop cleanly: {result['exit']}")
    return result


def image_facts(buildah: list[str], image: str) -> dict:
    out = subprocess.run(
        [*buildah, "inspect", "--type", "image", image], capture_output=True, text=True, check=True
    )
    info = json.loads(out.stdout)
    config = info["OCIv1"]["config"]
    # The stored manifest: uncompressed layer tars and the config, in bytes.
    manifest = json.loads(info["Manifest"])
    layers = manifest["layers"]
    return {
        "size_bytes": sum(layer["size"] for layer in layers) + manifest["config"]["size"],
        "layers": len(layers),
        "entrypoint": config.get("Entrypoint"),
        "user": config.get("User"),
        "exposed_ports": sorted(config.get("ExposedPorts") or {}),
        "env": config.get("Env"),
    }


def report_run(label: str, version: tuple[float, float, str], result: dict) -> None:
    print(f"\n[{label}]")
    print(
        f"  --version: {version[2]!r} in {version[0]:.3f} s (min of 5), median {version[1]:.3f} s"
    )
    print(
        f"  start: first log line after {result['first_line_s']:.3f} s, "
        f"'{LISTEN}' after {result['listening_s']:.3f} s (engine {result['engine']}, "
        f"uid {result['uids']})"
    )
    print(
        f"  events: {result['events']['published']} published, "
        f"{result['events']['logged']} JSON lines ({result['events']['structured']} structured); "
        f"consumer {result['consumer']}"
    )
    print(f"  /health: {result['health']}; stop: {result['exit']}")


def main() -> int:
    parser = argparse.ArgumentParser(description="run the FROM-scratch image against nats-server")
    parser.add_argument(
        "--buildah", required=True, help="the buildah command with its storage options"
    )
    parser.add_argument("--image", required=True)
    parser.add_argument("--executable", required=True, type=Path)
    parser.add_argument("--events", type=int, default=20)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    buildah = shlex.split(args.buildah)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="events-audit-image-test-"))
    failures = []

    facts = image_facts(buildah, args.image)
    exe_size = args.executable.stat().st_size
    print(
        f"image {args.image}: {facts['size_bytes'] / 1e6:.2f} MB ({facts['size_bytes']} bytes), "
        f"{facts['layers']} layer(s)"
    )
    print(
        f"  entrypoint {facts['entrypoint']}, user {facts['user']!r}, "
        f"exposed {facts['exposed_ports']}"
    )
    print(f"  executable {args.executable}: {exe_size / 1e6:.2f} MB")
    if facts["size_bytes"] > 30e6:
        failures.append(f"image larger than 30 MB: {facts['size_bytes']}")
    if (
        facts["entrypoint"] != ["/events-audit"]
        or facts["user"] != "65534:65534"
        or "3000/tcp" not in facts["exposed_ports"]
    ):
        failures.append(f"unexpected image config: {facts}")

    buildah_ok = False
    runner = BuildahRunner(buildah, args.image)
    try:
        check = bundle_check(runner)
        meta = {"executable", "frozen", "version", "formatting_compiled", "datapath_compiled", "ok"}
        modules = [key for key in check if key not in meta]
        print(
            f"\n[{runner.name}] bundle self-check ok: compiled formatting "
            f"{check['formatting_compiled']}, datapath {check['datapath_compiled']}; "
            f"all {len(modules)} bundled modules import"
        )
        version = timed_version(runner)
        result = run_service(runner, workdir / "buildah", args.events)
        report_run(runner.name, version, result)
        buildah_ok = True
    except Unreachable as exc:
        print(
            f"\n[{runner.name}] CANNOT REACH LOOPBACK: {exc}\n"
            "  falling back to the executable run directly"
        )
    except (Failure, subprocess.CalledProcessError) as exc:
        failures.append(f"{runner.name}: {exc}")
        print(f"\n[{runner.name}] FAILED: {exc}")
    finally:
        runner.close()

    direct = DirectRunner(args.executable)
    try:
        bundle_check(direct)
        version = timed_version(direct)
        result = run_service(direct, workdir / "direct", args.events)
        report_run(direct.name, version, result)
    except Failure as exc:
        failures.append(f"{direct.name}: {exc}")
        print(f"\n[{direct.name}] FAILED: {exc}")

    print(f"\nlogs in {workdir}")
    if failures:
        print("image-test: FAILED", *failures, sep="\n  ", file=sys.stderr)
        return 1
    print(
        "image-test: ok ("
        + ("image run with buildah" if buildah_ok else "buildah could not reach loopback")
        + " + executable run directly)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
