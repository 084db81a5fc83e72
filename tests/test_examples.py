"""`make run`'s script and the sample sender, against real servers."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from servers import ROOT, consumer_info, wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_run_local_starts_nats_and_the_service_and_the_sender_feeds_it(tmp_path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "NATS_PORT": str(port),
        "NATS_MONITOR_PORT": str(free_port()),
        "HEALTH_ADDR": "127.0.0.1:0",
        "EVENTS_AUDIT_VAR_DIR": str(tmp_path),
    }
    env.pop("EVENTS_AUDIT_NO_EXTENSIONS", None)
    out = tmp_path / "run.out"
    with open(out, "wb") as sink:
        run = subprocess.Popen(
            [sys.executable, "examples/run_local.py", "--log-format=json"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    pid_file = tmp_path / "nats" / "nats-server.pid"
    try:
        wait_until(lambda: b"Starting to listen" in out.read_bytes(), 30, "the service")
        text = out.read_text()
        assert "started nats-server with JetStream" in text and "examples/sender.py" in text
        url = f"nats://127.0.0.1:{port}"
        for extra in ([], ["--raw"]):
            sent = subprocess.run(
                [
                    sys.executable,
                    "examples/sender.py",
                    "--url",
                    url,
                    "--subject",
                    "events.test",
                    "--count",
                    "3",
                    *extra,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert sent.returncode == 0, sent.stderr
            assert sent.stdout.count("published events.test") == 3
        wait_until(lambda: consumer_info(url).ack_floor.stream_seq == 6, 20, "6 acks")
        run.send_signal(signal.SIGINT)
        assert run.wait(timeout=20) == 0
        text = out.read_text()
        assert text.count('"msg":"Received structured event"') == 3
        assert text.count('"msg":"Received raw event"') == 3
    finally:
        if run.poll() is None:
            run.kill()
        if pid_file.exists():  # the embedded server outlives the service on purpose
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def test_sender_explains_a_missing_server() -> None:
    result = subprocess.run(
        [sys.executable, "examples/sender.py", "--url", f"nats://127.0.0.1:{free_port()}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1 and "cannot connect" in result.stderr
