"""systemd support: sd_notify over a real $NOTIFY_SOCKET, the watchdog, the unit file.

A bound AF_UNIX datagram socket stands in for systemd's notify socket; the
service runs as a subprocess against a real nats-server.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from events_audit.logs import Logger
from events_audit.metrics import Metrics
from events_audit.sd_notify import Notifier, watchdog, watchdog_interval
from servers import ROOT, Service, wait_until
from test_service import base_args

UNIT = ROOT / "packaging" / "systemd" / "events-audit.service"
LOGROTATE = ROOT / "packaging" / "systemd" / "events-audit.logrotate"
PING_INTERVAL = 0.5  # WATCHDOG_USEC=1000000 / 2
PULL_TIMEOUT = 1.0  # base_args' --audit-pull-timeout
READINESS_BOUND = 3 * PULL_TIMEOUT + 1  # Metrics.readiness


class Receiver:
    """What systemd would receive: each datagram's states with its arrival time."""

    def __init__(self, address: str, on_datagram: Callable[[list[str]], None] | None = None):
        self.address = address  # a path, or "\0name" in the abstract namespace
        self.on_datagram = on_datagram
        self.datagrams: list[tuple[float, list[str]]] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.1)
        self._halt = threading.Event()
        self.thread = threading.Thread(target=self._run, name="notify-receiver", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._halt.is_set():
            try:
                data = self.sock.recv(4096)
            except TimeoutError:
                continue
            states = data.decode().split("\n")
            if self.on_datagram is not None:
                self.on_datagram(states)
            self.datagrams.append((time.monotonic(), states))

    def times(self, state: str, after: float = 0.0) -> list[float]:
        return [at for at, states in list(self.datagrams) if state in states and at > after]

    def first(self, prefix: str, after: float = 0.0) -> tuple[float, list[str]] | None:
        return next(
            (
                (at, states)
                for at, states in list(self.datagrams)
                if at > after and any(s.startswith(prefix) for s in states)
            ),
            None,
        )

    def close(self) -> None:
        self._halt.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def notify_socket():
    """A notify socket on a short path (AF_UNIX paths: at most 107 bytes)."""
    directory = tempfile.mkdtemp(dir="/tmp", prefix="ea-sd-")
    receiver = Receiver(os.path.join(directory, "notify"))
    yield receiver
    receiver.close()
    shutil.rmtree(directory, ignore_errors=True)


def start_service(tmp_path: Path, url: str, receiver: Receiver) -> tuple[Service, dict]:
    """The service and, once READY=1 came, its log as it was at that moment."""
    # the fast engine: its pulls complete only on what the server sends, so a
    # frozen server shows within the readiness bound
    svc = Service(
        tmp_path,
        base_args(url, engine="fast"),
        env={"NOTIFY_SOCKET": receiver.address, "WATCHDOG_USEC": "1000000"},
    )
    at_ready: dict[str, str] = {}
    receiver.on_datagram = lambda states: (
        at_ready.setdefault("log", svc.output()) if "READY=1" in states else None
    )
    return svc.start(), at_ready


def wait_ready(svc: Service, receiver: Receiver, at_ready: dict) -> float:
    ready_at = wait_until(lambda: receiver.first("READY=1"), 15, "READY=1")[0]
    assert "Created JetStream consumer" in at_ready["log"]  # bound before READY=1
    svc.wait_for("Starting to listen for JetStream events", 5)
    return ready_at


def assert_pinging(receiver: Receiver, after: float) -> None:
    def four() -> list[float] | None:
        pings = receiver.times("WATCHDOG=1", after)
        return pings if len(pings) >= 4 else None

    pings = wait_until(four, 5, "4 pings")
    gaps = [b - a for a, b in zip(pings, pings[1:], strict=False)]
    assert all(0.5 * PING_INTERVAL < gap < 2 * PING_INTERVAL for gap in gaps), gaps


def stop_and_check(svc: Service, receiver: Receiver) -> None:
    term_at = time.monotonic()
    assert svc.terminate() == 0
    stopping_at = wait_until(lambda: receiver.times("STOPPING=1"), 2, "STOPPING=1")[0]
    assert stopping_at - term_at < 1.0  # at the signal, not at the end of the shutdown
    assert len(receiver.times("STOPPING=1")) == 1
    assert len(receiver.times("READY=1")) == 1  # not again after the reconnect


def test_ready_watchdog_and_stopping_with_a_frozen_server(
    nats_server, tmp_path, notify_socket
) -> None:
    svc, at_ready = start_service(tmp_path, nats_server.url, notify_socket)
    try:
        ready_at = wait_ready(svc, notify_socket, at_ready)
        _, states = notify_socket.first("READY=1")
        assert any(s.startswith("STATUS=Listening on events.>") for s in states)
        assert_pinging(notify_socket, ready_at)

        nats_server.proc.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        try:
            not_ready_at = wait_until(
                lambda: notify_socket.first("STATUS=Not ready: ", frozen_at),
                READINESS_BOUND + 3,
                "STATUS=Not ready",
            )[0]
            last_ping = notify_socket.times("WATCHDOG=1")[-1]
            assert last_ping - frozen_at < READINESS_BOUND + PING_INTERVAL + 0.5
            time.sleep(2 * PING_INTERVAL)  # silence while it stays frozen
            assert notify_socket.times("WATCHDOG=1", not_ready_at) == []
        finally:
            nats_server.proc.send_signal(signal.SIGCONT)
        resumed_at, states = wait_until(
            lambda: notify_socket.first("WATCHDOG=1", not_ready_at), 15, "pings again"
        )
        assert any(s.startswith("STATUS=Listening on") for s in states)
        assert_pinging(notify_socket, resumed_at - 0.01)
        stop_and_check(svc, notify_socket)
    finally:
        svc.stop()


def test_no_watchdog_ping_while_the_server_is_gone(nats_server, tmp_path, notify_socket) -> None:
    svc, at_ready = start_service(tmp_path, nats_server.url, notify_socket)
    try:
        ready_at = wait_ready(svc, notify_socket, at_ready)
        wait_until(lambda: len(notify_socket.times("WATCHDOG=1", ready_at)) >= 2, 5, "pings")
        nats_server.stop()
        stopped_at = time.monotonic()
        not_ready_at, states = wait_until(
            lambda: notify_socket.first("STATUS=Not ready: ", stopped_at), 5, "STATUS=Not ready"
        )
        assert "STATUS=Not ready: not connected to NATS" in states
        assert notify_socket.times("WATCHDOG=1")[-1] - stopped_at < PING_INTERVAL + 0.5
        nats_server.start()  # on the same port, with the same store
        wait_until(lambda: notify_socket.times("WATCHDOG=1", not_ready_at), 15, "pings again")
        stop_and_check(svc, notify_socket)
    finally:
        svc.stop()


# -- the Notifier on its own ---------------------------------------------------------


def capture() -> tuple[Logger, list[bytes]]:
    lines: list[bytes] = []
    return Logger(lines.append, "info"), lines


def test_notifier_sends_to_an_abstract_socket() -> None:
    name = f"events-audit-test-{uuid.uuid4().hex}"
    receiver = Receiver("\0" + name)
    log, lines = capture()
    notifier = Notifier.from_environment(log, {"NOTIFY_SOCKET": "@" + name})
    try:
        assert notifier.enabled
        assert notifier.send("READY=1", "STATUS=two\nlines")
        got = wait_until(lambda: receiver.datagrams, 2, "a datagram")
        assert got[0][1] == ["READY=1", "STATUS=two lines"]  # one state a line
    finally:
        notifier.close()
        receiver.close()
    assert lines == []


def test_notifier_without_notify_socket_does_nothing() -> None:
    log, lines = capture()
    for environ in ({}, {"NOTIFY_SOCKET": ""}):
        notifier = Notifier.from_environment(log, environ)
        assert not notifier.enabled
        assert notifier.send("READY=1") is False
        assert notifier._socket is None
    assert lines == []


@pytest.mark.parametrize("address", ["no-such-dir", "@events-audit-nobody-listens", "rel/sock"])
def test_unreachable_socket_is_one_warning(address: str, tmp_path) -> None:
    if address == "no-such-dir":  # an absolute path where nobody listens
        address = str(tmp_path / "no-such-dir" / "notify")
    log, lines = capture()
    notifier = Notifier(address, log)
    try:
        for _ in range(3):
            assert notifier.send("WATCHDOG=1") is False  # and no exception
    finally:
        notifier.close()
    assert len(lines) == 1
    assert b"level=warning" in lines[0] and b"Cannot notify systemd" in lines[0]


def test_watchdog_interval() -> None:
    pid = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "1000000"}) == 0.5
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": pid}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_watchdog_pings_only_while_ready() -> None:
    name = f"events-audit-test-{uuid.uuid4().hex}"
    receiver = Receiver("\0" + name)
    notifier = Notifier("@" + name)
    metrics = Metrics()
    metrics.connected = metrics.consumer_bound = True
    metrics.pulled()

    async def scenario() -> None:
        async def until(predicate, what: str) -> None:
            deadline = time.monotonic() + 2
            while not predicate():
                assert time.monotonic() < deadline, what
                await asyncio.sleep(0.005)

        task = asyncio.ensure_future(watchdog(notifier, metrics, 0.01, "Listening"))
        try:
            await until(lambda: len(receiver.times("WATCHDOG=1")) >= 3, "pings")
            metrics.connected = False
            await until(lambda: receiver.first("STATUS=Not ready"), "STATUS=Not ready")
            quiet_from = receiver.first("STATUS=Not ready")[0]
            await asyncio.sleep(0.05)
            assert receiver.times("WATCHDOG=1", quiet_from) == []
            metrics.connected = True
            await until(lambda: receiver.times("WATCHDOG=1", quiet_from), "pings again")
        finally:
            task.cancel()

    try:
        asyncio.run(scenario())
        states = [s for _, states in receiver.datagrams for s in states]
        assert "STATUS=Not ready: not connected to NATS" in states
        assert states.count("STATUS=Listening") == 1  # said again when ready again only
    finally:
        notifier.close()
        receiver.close()


# -- the unit and the logrotate snippet ---------------------------------------------------


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_unit_verifies(tmp_path) -> None:
    """The check make lint runs: verify without a word, exposure at most 2.0."""
    text = UNIT.read_text()
    assert text.count("\nExecStart=/usr/local/bin/events-audit\n") == 1
    script = Path(sys.executable).parent / "events-audit"
    if not script.exists():  # (an install without the console script)
        script = tmp_path / "events-audit"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    check = subprocess.run(
        [str(UNIT.parent / "check_unit.sh"), str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=UNIT.parent.parent.parent,
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.skipif(not shutil.which("logrotate"), reason="logrotate not installed")
def test_logrotate_snippet_parses(tmp_path) -> None:
    (tmp_path / "log").mkdir()
    conf = tmp_path / "events-audit"
    conf.write_text(LOGROTATE.read_text().replace("/var/log/events-audit", str(tmp_path / "log")))
    result = subprocess.run(
        ["logrotate", "-d", "-s", str(tmp_path / "state"), str(conf)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and "error" not in result.stderr.lower(), result.stderr
    # the service reopens on SIGHUP: a copy and truncate would lose or repeat lines
    assert not re.search(r"^\s*copytruncate", LOGROTATE.read_text(), re.MULTILINE)
