"""sd_notify(3) without libsystemd: tell systemd the service is ready, alive, stopping.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET``, a datagram socket
that takes newline-separated ``KEY=value`` states (``READY=1``,
``STATUS=...``, ``STOPPING=1``, ``WATCHDOG=1``).  With ``WatchdogSec=`` it
also passes ``$WATCHDOG_USEC`` and restarts the service when no
``WATCHDOG=1`` comes within that time.  Without ``$NOTIFY_SOCKET`` (not run
by systemd) nothing is sent and nothing else changes.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from .logs import Logger
from .metrics import Metrics

# How long a send may wait for room in systemd's queue (it blocks the event loop).
SEND_TIMEOUT = 0.2


class Notifier:
    """Sends states to ``$NOTIFY_SOCKET``; a failure never stops the service."""

    def __init__(self, address: str | None, log: Logger | None = None) -> None:
        self.address = address or None  # an empty variable is no socket
        self.log = log
        self._socket: socket.socket | None = None
        self._warned = False

    @classmethod
    def from_environment(
        cls, log: Logger | None = None, environ: Mapping[str, str] | None = None
    ) -> Notifier:
        environ = os.environ if environ is None else environ
        return cls(environ.get("NOTIFY_SOCKET"), log)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *states: str) -> bool:
        """Send ``states`` in one datagram; True when it went out."""
        if self.address is None or not states:
            return False
        # one state a line: a newline inside a STATUS text would start another state
        data = "\n".join(state.replace("\n", " ") for state in states).encode()
        try:
            if self._socket is None:
                self._socket = _open(self.address)
            self._socket.sendto(data, _target(self.address))
        except (OSError, ValueError) as exc:
            self._warn(exc)
            return False
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _warn(self, exc: Exception) -> None:
        # once: a socket that is gone stays gone, and the pings would repeat it every few seconds
        if self._warned or self.log is None:
            return
        self._warned = True
        self.log.warning(
            "Cannot notify systemd (said once; the service runs on)",
            notify_socket=self.address,
            error=(exc.strerror if isinstance(exc, OSError) else None) or str(exc),
        )


def _target(address: str) -> str:
    if address.startswith("@"):  # systemd's spelling of a name in the abstract namespace
        return "\0" + address[1:]
    if address.startswith("/"):
        return address
    # (as sd_notify: a relative path would depend on the working directory)
    raise ValueError(f"not an absolute path nor an @abstract name: {address!r}")


def _open(address: str) -> socket.socket:
    _target(address)  # refuse a bad address before making a socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    # systemd drains its socket at once, but a full queue must not hold the
    # event loop for long: READY=1 waits a moment for room, then it is dropped
    sock.settimeout(SEND_TIMEOUT)
    return sock


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC``, as
    sd_watchdog_enabled(3) advises; None when systemd expects no pings from
    this process (``$WATCHDOG_PID`` names another one, e.g. a parent)."""
    environ = os.environ if environ is None else environ
    try:
        usec = int(environ.get("WATCHDOG_USEC", ""))
        pid = int(environ.get("WATCHDOG_PID") or os.getpid())
    except ValueError:  # systemd writes numbers; anything else was not set by it
        return None
    if usec <= 0 or pid != os.getpid():
        return None
    return usec / 2e6


async def watchdog(
    notifier: Notifier, metrics: Metrics, interval: float, ready_status: str = "Ready"
) -> None:
    """``WATCHDOG=1`` every ``interval`` while the service is ready (until cancelled).

    A ping from a timer alone would only prove that the event loop turns;
    pinging only while pull cycles complete (``Metrics.readiness``: connected,
    consumer bound, a pull cycle within 3 pull timeouts + 1 s) lets systemd
    restart a service that stalled.  STATUS= says why it stopped pinging.
    """
    was_ready = True
    while True:
        ready, reason = metrics.readiness()
        if ready:
            notifier.send("WATCHDOG=1", *(() if was_ready else ("STATUS=" + ready_status,)))
        elif was_ready:
            notifier.send("STATUS=Not ready: " + reason)
        was_ready = ready
        await asyncio.sleep(interval)


__all__ = ["Notifier", "watchdog", "watchdog_interval"]
