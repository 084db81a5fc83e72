"""Writing a batch's lines, and what its messages get for it.

The lines are written (and, for a file, fsynced) in one write; or, by the
fast engine to a regular file, appended in the event loop as soon as they are
formatted and synced later in the worker thread.  Once the
output has shown it can be slow (a write took over a tenth of the ack wait),
writes go to a worker thread while the event loop keeps the connection alive,
and a write that takes longer than a third of --audit-ack-wait sends
in-progress acks (+WPI) for everything delivered and not yet acked, so the
server does not hand it to someone else meanwhile.  Written: the engine acks.  Not
written: every message is NAKed with a delay that grows with each failure in
a row (1 s, 2 s, 4 s, ... up to --audit-ack-wait), pulling pauses for that
long, and a message at its last delivery (--audit-max-deliver) is terminated
with an error line naming its stream sequence, so no message loops forever.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable

from .config import Settings
from .logs import Logger
from .metrics import Metrics
from .sink import Buffer, Sink, SinkError

EXCERPT_BYTES = 256
# The error line of a TERMed message (events-audit verify reads it back).
TERMINATED = "Message terminated after its last delivery: its line could not be written"
# A write in place may block the event loop until the output takes it; more
# than a pipe's buffer goes to the worker thread from the start, so the loop
# keeps reading (and sending in-progress acks) meanwhile.
INLINE_BYTES = 64 << 10
# The exit code when the log output did not take a write before the shutdown
# bound (--log-shutdown-timeout): its messages were NAKed, they come back.
EXIT_OUTPUT_HUNG = 4


def _size(lines: Buffer | list[bytes]) -> int:
    return len(lines) if isinstance(lines, Buffer) else sum(len(part) for part in lines)


class Delivery:
    def __init__(self, sink: Sink, log: Logger, settings: Settings, metrics: Metrics) -> None:
        self.counters = metrics.counters
        self.sink = sink
        self.log = log
        self.ack_wait = settings.audit_ack_wait
        self.max_deliver = settings.audit_max_deliver
        self.failures = 0  # write failures in a row
        self.paused_until = 0.0  # no pulling before this (monotonic)
        # Writes go to a worker thread when the output is fsynced (meanwhile
        # the next batches queue up and share one fsync, a group commit) or
        # once it has shown it can be slow; else they are done in place.
        self.slow = sink.fsync
        self.slow_appends = False  # appends in place (appends_in_place) until slow once
        self.give_up_at = 0.0  # shutdown: a write still running then is given up
        self.hung = False  # a write was given up: the output did not take it
        self.shutdown = asyncio.get_running_loop().create_future()  # set by give_up_after

    def in_place(self, size: int) -> bool:
        """A write of ``size`` bytes is done in the event loop (else in the
        worker thread)."""
        # A pipe, FIFO or terminal can block a write for ever (its reader
        # stopped), and so can a network file system: only a regular file on
        # a local one is written in the event loop.
        return not self.slow and size <= INLINE_BYTES and self.sink.local

    @property
    def appends_in_place(self) -> bool:
        """A batch's lines go into the file at once, in the event loop, and
        its fsync (if any) follows in the worker thread: the page cache takes
        the lines while they are still in the CPU's cache (copied a few MiB
        later, with large events, the copy cost four times as much).  Only on
        a local file system: a network one can hang a write."""
        return not self.slow_appends and self.sink.local

    @property
    def paused(self) -> bool:
        return time.monotonic() < self.paused_until

    async def write(
        self,
        lines: Buffer | list[bytes],
        keepalive: Callable[[], Awaitable[int]],
        sequences: tuple[int, int] = (0, 0),
    ) -> bool:
        """Write the lines; True once they are in the log output.
        ``sequences``: the first and last stream sequence among them (the digest's)."""
        if not lines:
            return True
        try:
            if not self.in_place(_size(lines)):
                await self._in_thread(
                    functools.partial(self.sink.write, lines, sequences=sequences), keepalive
                )
            else:
                # A thread hand-off costs more than a write to a healthy
                # output: write here until the output shows it can be slow.
                started = time.monotonic()
                self.sink.write(lines, sequences=sequences)
                self._timed(started)
        except SinkError as exc:
            return self._failed(exc)
        return self._written()

    def append(self, lines: Buffer, sequences: tuple[int, int]) -> int | None:
        """Append the lines to the file in the event loop: the ticket that
        ``sync`` takes (0: no lines), or None when they were not appended
        (the file is as before; ``write`` then tries again and reports why)."""
        started = time.monotonic()
        try:
            ticket = self.sink.append(lines, sequences=sequences)
        except SinkError:
            self._warn_moved()
            return None
        self._timed(started)
        self._warn_moved()
        return ticket

    async def sync(self, ticket: int, keepalive: Callable[[], Awaitable[int]]) -> bool:
        """True once the lines appended as ``ticket`` are in the log output
        (on the disk, for a fsynced file)."""
        if not ticket:
            return True
        try:
            if self.sink.fsync:
                await self._in_thread(functools.partial(self.sink.sync, ticket), keepalive)
            else:
                self.sink.sync(ticket)  # nothing to wait for: was the file removed meanwhile?
        except SinkError as exc:
            return self._failed(exc)
        return self._written()

    def _timed(self, started: float) -> None:
        """A write or append in the event loop took this long: once one took
        over a tenth of the ack wait, they go to the worker thread."""
        if time.monotonic() - started > self.ack_wait / 10:
            self.slow = self.slow_appends = True
            self.log.warning(
                "The log output is slow; writes go to a worker thread "
                "and batches get in-progress acks while written"
            )

    def _failed(self, exc: SinkError) -> bool:
        self._warn_moved()
        self.counters.write_errors += 1
        self.failures += 1
        delay = self.nak_delay()
        self.paused_until = time.monotonic() + delay
        self.log.error(
            "Failed to write log lines; the messages are NAKed and will be redelivered",
            error=str(exc),
            retry_in=f"{delay:g}s",
        )
        return False

    def _written(self) -> bool:
        self._warn_moved()
        if self.failures:
            self.log.info("Log output is writable again", failed_writes=self.failures)
            self.failures = 0
        return True

    async def _in_thread(
        self, call: Callable[[], None], keepalive: Callable[[], Awaitable[int]]
    ) -> None:
        writing = asyncio.get_running_loop().run_in_executor(None, call)
        while True:
            timeout = max(self.ack_wait / 3, 0.05)
            if self.give_up_at:
                timeout = min(timeout, max(self.give_up_at - time.monotonic(), 0.01))
            waiting = {writing} if self.shutdown.done() else {writing, self.shutdown}
            done, _ = await asyncio.wait(
                waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            if writing in done:
                break
            if self.give_up_at and time.monotonic() >= self.give_up_at:
                # The thread stays stuck in the write; its lines may still come
                # out later, so its messages may be logged twice, never lost.
                self.hung = True
                raise SinkError(f"{self.sink.target} took no write before the shutdown bound")
            if self.shutdown in done:
                continue  # the bound was set just now: wait for it
            self.counters.in_progress += await keepalive()  # still writing: the batch is ours
        writing.result()

    def give_up_after(self, seconds: float) -> None:
        """Shutdown: writes still running after ``seconds`` are given up."""
        self.give_up_at = time.monotonic() + seconds
        if not self.shutdown.done():
            self.shutdown.set_result(None)  # waiting writes look at the bound now

    def _warn_moved(self) -> None:
        while self.sink.notices:
            why, fields = self.sink.notices.pop(0)
            if why == "rotated":  # a new file at the path: what SIGHUP would do
                self.log.info("The log file was rotated; reopened its path", **fields)
                continue
            self.counters.output_reopens += 1
            self.log.warning(
                f"The log file was {why} under the service; reopened its path", **fields
            )

    def nak_delay(self) -> float:
        return min(2.0 ** (self.failures - 1), max(self.ack_wait, 1.0))

    def nak_payload(self) -> bytes:
        return b'-NAK {"delay":%d}' % int(self.nak_delay() * 1e9)

    def terminated(self, stream: str, sequence: int, delivered: int, excerpt: bytes) -> None:
        """A message given up on: the line operators need to find it in the stream."""
        self.counters.terms += 1
        self.log.error(
            TERMINATED,
            stream=stream,
            sequence=sequence,
            delivered=delivered,
            payload_excerpt=excerpt[:EXCERPT_BYTES].decode("utf-8", "surrogateescape"),
        )
