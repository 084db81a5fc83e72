"""The fast engine: nats-py keeps the connection, the data path takes the frames.

nats-py owns everything about the connection (server list, reconnect with
backoff, user/password, token, NKey and .creds auth, TLS, lame duck mode, no
responders) and the JetStream API calls.  This engine subscribes one inbox
through nats-py, so nats-py re-subscribes it after a reconnect, and puts a
tap in front of nats-py's protocol parser: what is read from the socket goes
through the data path first (``DataPath.feed_frames``, on a view of the
buffer the socket reads into, see chunk_reader.py), which parses the MSG/HMSG
frames of that inbox, formats their lines and builds their acks in compiled
code, and hands every other frame to nats-py's parser unchanged.  Per read
(a chunk): one write of the lines, then one socket write of the acks (and of
the next pull requests).
To a regular file the lines are appended at once, in the event loop, while
they are still in the CPU's cache, and a writer task syncs them (one fsync for
all appended meanwhile) before their acks; to any other output the writer
writes what has queued in one go.

Pull requests are kept in flight (for small events about ``PULL_CREDIT``
messages' worth, in requests of ``--audit-pull-max-messages`` each, re-issued
as they are used up) with ``expires`` = ``--audit-pull-timeout`` and an idle
heartbeat; a pull that neither delivers nor beats for two heartbeats is taken
as lost (a server restart, a leader change) and re-issued.  Each request also
carries ``max_bytes``: together they ask for at most ``--audit-pull-max-bytes``
(what the server may queue for this client while a write waits for the disk,
so far below its ``max_pending``; more while long lines go straight into a
local file, see APPENDED_ASK_MAX), and no more is asked for while that much
waits in memory to be written (or four times that, appended to the file,
waits for its fsync).  The requests follow the size of the messages
(``PullShaper``): many for small events, few and large ones for large events.
"""

from __future__ import annotations

import asyncio
import ctypes
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass

import nats.aio.client
import nats.errors
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from ..config import format_duration
from ..datapath import DataPath, ProtocolViolation, processed_lines, reply_frames, settle_frames
from ..jetstream import requests_in_flight
from .base import Engine
from .chunk_reader import ChunkReader, take_chunks

# nats-py reads the socket 32 KiB at a time: until the reader is switched
# (chunk_reader.py; its reads follow the event size), in chunks of this.
READ_SIZE = 256 << 10

# A request must take any message the server accepts: max_payload plus
# room for the subject and JetStream's headers.
FRAME_MARGIN = 64 << 10
# The smallest max_bytes a request gets: small events are limited by the
# message count, not by this.
MIN_REQUEST_BYTES = 64 << 10
# Writes (or, of batches appended already, syncs) of queued batches that may
# overlap: one appends while another's fsync waits for the disk.  A second
# write starts only while the one in flight is large and of long lines: with
# short lines the fsyncs' fixed cost per message dominates (measured at 300 B:
# +10 % CPU per message when overlapped), and what queues meanwhile is better
# written and synced as one.
WRITES_IN_FLIGHT = 2
OVERLAP_MIN_BYTES = 256 << 10
# Lines of at least this many bytes on average are long.  To a fsynced file
# only batches of long lines are appended at once: short ones queued behind
# an fsync still fit the CPU's cache, and written as one they cost fewer
# writes (at 300 B, appended at once: 0.96x the msgs/s, 1.04x the CPU).
LONG_LINE = 2 << 10
# Lines appended at once wait for their fsync in the page cache, not in this
# process: up to this many budgets of them may wait, so the socket is read on
# while an fsync runs (with 4 rather than 1: 1.08x [0.92-1.43] the msgs/s at
# 256 KiB, 1.04x at 64 KiB; paired rounds) and the dirty pages stay far below
# the kernel's writeback throttling.
APPENDED_BUDGETS = 4
# While long lines go straight into a local file, what arrives waits in the
# page cache for its sync, not in this process: the requests may then ask for
# as much as may wait there (APPENDED_BUDGETS budgets), so the server runs
# further ahead while a write or a sync holds this process up (same rounds
# against one budget: 1.18x the msgs/s at 16 KiB, 1.19x at 64 KiB, 1.09x at
# 256 KiB, 0.94x at 1 MiB), but for at most half the server's default
# max_pending (64 MiB).
APPENDED_ASK_MAX = 32 << 20
# After a message too large for the requests, they stay large this long.
LARGE_HOLD = 10.0
# Requests whose max_bytes, not their message count, would end them (less
# than twice a batch's bytes) ask for this many messages per byte: no
# message is this small (its subject and ack reply alone are longer), so
# such a request ends only by bytes or by expiry, always with a status that
# says so, on any server version.
MESSAGE_BYTES_FLOOR = 16
# A request is surely gone at the server this long after it expired there.
EXPIRY_MARGIN = 1.0
# glibc's mallopt parameters
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
# Pull requests a standby (--audit-ha=pinned) keeps at the server.
STANDBY_REQUESTS = 1
# A request ended by its byte limit, not refused.
ENDED_BY_BYTES = ("Message Size Exceeds MaxBytes", "Batch Completed")


def may_ask(
    pending_count: int, held_bytes: int, pending_bytes: int, room: int, budget: int
) -> bool:
    """Whether more may be asked for while ``pending_count`` messages wait to
    be written and acked: fewer than ``room`` (a pipeline's worth), at most
    ``budget`` bytes of their lines in memory (``held_bytes``), and at most
    APPENDED_BUDGETS budgets in all (those appended wait for their sync)."""
    return (
        pending_count < room and held_bytes < budget and pending_bytes < APPENDED_BUDGETS * budget
    )


def pull_shape(
    batch: int,
    budget: int,
    largest: int,
    per_message: float = 0.0,
    consumer_max_bytes: int = 0,
) -> tuple[int, int]:
    """(requests kept at the server, max_bytes of each) for messages of about
    ``per_message`` bytes; 0 means unknown, and every request must then take
    the ``largest`` message.  Together the requests ask for at most
    ``budget`` bytes (unless one request of ``largest`` is more): that is
    what the server may queue for this client, so it stays far below the
    server's max_pending, and what the engine holds in memory.  Small events:
    the deep pipeline (requests_in_flight); large ones: fewer, larger
    requests, at least two so that one is at the server while the other's
    messages are written."""
    # A request smaller than the next message ends with nothing delivered;
    # room for two typical messages keeps that rare.
    if per_message <= 0:
        floor = largest
    else:
        floor = min(largest, max(MIN_REQUEST_BYTES, int(2 * per_message)))
    want = max(int(batch * per_message + per_message), floor)
    fewest = 2 if budget >= 2 * floor else 1
    requests = max(fewest, min(requests_in_flight(batch), budget // want))
    request_bytes = max(budget // requests, floor)
    if consumer_max_bytes:
        request_bytes = min(request_bytes, consumer_max_bytes)
    return requests, request_bytes


def request_batch(
    batch: int, request_bytes: int, per_message: float = 0.0, consumer_max_batch: int = 0
) -> int:
    """The message count of each request: ``batch`` while it ends the
    request (small events); else so many that only ``request_bytes`` (or
    the expiry) can end it (see MESSAGE_BYTES_FLOOR)."""
    if per_message <= 0 or request_bytes >= 2 * batch * per_message:
        return batch
    count = max(batch, -(-request_bytes // MESSAGE_BYTES_FLOOR))
    return min(count, consumer_max_batch) if consumer_max_batch else count


class PullShaper:
    """Follows the size of the messages and shapes the requests after it."""

    def __init__(
        self,
        batch: int,
        budget: int,
        largest: int,
        consumer_max_bytes: int,
        consumer_max_batch: int = 0,
    ) -> None:
        self.batch, self.budget, self.largest = batch, budget, largest
        self.consumer_max_bytes = consumer_max_bytes
        self.consumer_max_batch = consumer_max_batch
        self.per_message = 0.0  # bytes per message, a moving average; 0 unknown
        self.large_until = 0.0  # a too large message was seen: large requests
        self.unseen = 0  # bytes read since the last chunk with messages

    def fed(self, nbytes: int, messages: int) -> None:
        self.unseen += nbytes
        if messages:
            size = self.unseen / messages
            self.unseen = 0
            self.per_message = size if not self.per_message else 0.7 * self.per_message + 0.3 * size

    def too_small(self) -> None:
        """A request that got nothing ended by its byte limit: a message
        larger than the requests waits."""
        self.large_until = time.monotonic() + LARGE_HOLD

    def shape(self, appending: bool = False) -> tuple[int, int, int]:
        """(requests kept at the server, max_bytes and message count of each);
        ``appending``: lines go straight into a local file (see APPENDED_ASK_MAX)."""
        per_message = 0.0 if time.monotonic() < self.large_until else self.per_message
        budget = self.budget
        if appending and per_message >= LONG_LINE:
            budget = max(budget, min(APPENDED_BUDGETS * budget, APPENDED_ASK_MAX))
        requests, request_bytes = pull_shape(
            self.batch, budget, self.largest, per_message, self.consumer_max_bytes
        )
        count = request_batch(self.batch, request_bytes, per_message, self.consumer_max_batch)
        return requests, request_bytes, count


def keep_freed_buffers() -> None:
    """glibc hands an allocation over 128 KiB back to the kernel when it is
    freed, so with large events every batch's buffers are faulted in and
    zeroed again.  Serve allocations under 32 MiB from the heap and keep up
    to 64 MiB of it when freed (the peak RSS stays what the budget makes it:
    that memory was in use a moment before)."""
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc
        return
    mallopt(M_MMAP_THRESHOLD, 32 << 20)
    mallopt(M_TRIM_THRESHOLD, 64 << 20)


def ends_are_told(nc: Client) -> bool:
    """Whether the server tells every end of a request with max_bytes: since
    nats-server 2.10 one ended by its count sends 409 "Batch Completed" (an
    unknown version is taken to be recent).  Before, such a request ended
    silently and is counted off by its messages instead, a guess: the server
    fills its requests round robin."""
    version = nc.connected_server_version
    try:
        return not version.major or (version.major, version.minor) >= (2, 10)
    except (TypeError, ValueError, AttributeError):
        return True


def supported(nc: Client) -> bool:
    """The nats-py internals this engine relies on are there."""
    return all(hasattr(nc, name) for name in ("_ps", "_send_command", "_flush_pending"))


@dataclass
class _Batch:
    """One fed chunk's data messages, from parsing to their acks."""

    lines: bytes
    acks: bytes
    replies: bytes
    subjects: bytes
    count: int
    structured: int
    redelivered: int
    max_sequence: int
    min_sequence: int
    last_chances: list
    started_ns: int
    arrived: float
    size: int = -1  # bytes of lines (kept once the lines are appended and dropped)
    ticket: int = 0  # the sink's, once appended (Delivery.append)
    appended: bool = False

    def __post_init__(self) -> None:
        if self.size < 0:
            self.size = len(self.lines)

    @property
    def held(self) -> int:
        """Bytes of its lines in this process's memory (none once appended)."""
        return 0 if self.appended else self.size

    @classmethod
    def join(cls, batches: list[_Batch]) -> _Batch:
        """One batch of several, all appended or none."""
        if len(batches) == 1:
            return batches[0]
        return cls(
            b"",  # the lines are written from the parts
            b"".join(b.acks for b in batches),
            b"".join(b.replies for b in batches),
            b"".join(b.subjects for b in batches),
            sum(b.count for b in batches),
            sum(b.structured for b in batches),
            sum(b.redelivered for b in batches),
            max(b.max_sequence for b in batches),
            min((b.min_sequence for b in batches if b.min_sequence), default=0),
            [chance for b in batches for chance in b.last_chances],
            batches[0].started_ns,
            batches[0].arrived,
            sum(b.size for b in batches),
            max(b.ticket for b in batches),
            batches[0].appended,
        )


@dataclass(eq=False)
class _Request:
    """A pull request the server is taken to hold."""

    owed: int  # messages it still owes, as counted off (_owe_less)
    expires: float  # when it expires at the server (monotonic)
    pinned: bool  # it carries the pin id (--audit-ha=pinned)
    count: int  # the messages it asked for
    by_count: bool  # its count ends it (else its max_bytes or its expiry)


class _Tap:
    """Stands in for nats-py's parser; see the module doc."""

    def __init__(self, inner, engine: FastEngine) -> None:
        self.inner = inner
        self.engine = engine

    def reset(self) -> None:
        self.engine.path.reset()
        self.inner.reset()

    async def parse(self, data: bytes | memoryview = b"") -> None:
        reader = getattr(self.engine.nc._transport, "_io_reader", None)
        take_chunks(reader)
        try:
            # a view of the reader's buffer: what the data path leaves there
            # (an unfinished frame) comes again with the next read
            other = await self.engine.on_chunk(
                data, reader if isinstance(data, memoryview) else None
            )
        except nats.errors.ProtocolError:
            raise
        except Exception as exc:  # reconnecting resets the state; unacked ones come back
            self.engine.log.error("Data path failed, reconnecting", error=repr(exc))
            raise nats.errors.ProtocolError from exc
        if other:
            await self.inner.parse(other)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


class FastEngine(Engine):
    name = "fast"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        binding, settings = self.binding, self.settings
        # within the consumer's own limits on pull requests, if it has any
        self.batch = min(settings.audit_pull_max_messages, binding.max_request_batch or 1 << 30)
        self.expires = min(settings.audit_pull_timeout, binding.max_request_expires or 1e9)
        if binding.priority_group:
            # ADR-42: a pull lives at most half the priority timeout, so the
            # active instance re-pulls (and keeps its pin) while idle too
            self.expires = min(self.expires, binding.priority_timeout / 2)
        max_payload = getattr(self.nc, "max_payload", 0) or 1 << 20
        self.largest = max_payload + FRAME_MARGIN
        self.budget = settings.audit_pull_max_bytes
        self.shaper = PullShaper(
            self.batch,
            self.budget,
            self.largest,
            binding.max_request_max_bytes,
            binding.max_request_batch,
        )
        self.inflight, self.request_bytes, self.request_count = self.shaper.shape()
        self.ends_told = ends_are_told(self.nc)
        # The server beats when a request idles this long; it must be at most
        # half the request's life.
        self.heartbeat = min(max(self.expires * 0.4, 0.05), 5.0)
        prefix = getattr(self.js, "_prefix", "$JS.API")
        self.next_subject = f"{prefix}.CONSUMER.MSG.NEXT.{binding.stream}.{binding.durable}"
        # oldest first: what the server is taken to hold (not less than it does)
        self.requests: deque[_Request] = deque()
        self.last_activity = time.monotonic()  # a message or a status: the pull is alive
        self.stopping = False
        self.paused_until = 0.0  # after a refusal, ask again only after this
        self.path: DataPath | None = None
        self.inbox = ""
        self._repairing: asyncio.Task | None = None
        self.repair_retry_at = 0.0  # when a failed repair is tried again
        self.pending: deque[_Batch] = deque()  # parsed, not yet written and acked
        self.unappended = 0  # of them, those not appended at once (Delivery.append)
        self.pending_count = 0  # their messages
        self.pending_bytes = 0  # and their lines' bytes
        self.held_bytes = 0  # of them, those still in memory (not appended)
        self.queued = asyncio.Event()
        self._payload, self._payload_for = b"", None

    # -- the pull --------------------------------------------------------------

    def _request_payload(self) -> bytes:
        """The body of every pull request (the same until the consumer or the
        shape changes)."""
        pin_id = self.role.pin_id if self.role is not None else ""
        shape = (self.binding, self.request_bytes, self.request_count, pin_id)
        if self._payload_for == shape:
            return self._payload
        request = {
            "batch": self.request_count,
            "expires": int(self.expires * 1e9),
            "idle_heartbeat": int(self.heartbeat * 1e9),
            "max_bytes": self.request_bytes,
        }
        if self.binding.priority_group:
            request["group"] = self.binding.priority_group
            if pin_id:
                request["id"] = pin_id  # the pin's pulls; without: a standby's
        self._payload = json.dumps(request).encode()
        self._payload_for = shape
        return self._payload

    async def _top_up(self) -> None:
        """Keep ``inflight`` requests at the server."""
        now = time.monotonic()
        while self.requests and self.requests[0].expires + EXPIRY_MARGIN < now:
            self.requests.popleft()  # expired at the server, yet no status came
        if now < self.paused_until or self.delivery.paused:
            return
        self.inflight, self.request_bytes, self.request_count = self.shaper.shape(
            self.delivery.appends_in_place
        )
        if self.role is not None and not self.role.active:
            # A standby's pulls get nothing until one of them is pinned;
            # then the pipeline is filled with pulls carrying the pin.
            self.inflight = STANDBY_REQUESTS
        if not may_ask(
            self.pending_count,
            self.held_bytes,
            self.pending_bytes,
            self.inflight * self.batch,
            self.budget,
        ):
            return  # the writer is behind: a pipeline's worth is waiting already
        pinned = self.role is not None and self.role.active
        count = self.request_count
        while len(self.requests) < self.inflight and not self.stopping:
            expires = time.monotonic() + self.expires
            by_count = count == self.batch and not self.ends_told
            self.requests.append(_Request(count, expires, pinned, count, by_count))
            await self.nc.publish(self.next_subject, self._request_payload(), reply=self.inbox)

    def _owe_less(self, count: int) -> None:
        """Count delivered messages off the requests their count ends, the
        oldest first.  The server fills waiting requests round robin, so
        which request a message used is unknown; what counts is the total
        still owed.  The others wait for the status that ends them."""
        for request in [r for r in self.requests if r.by_count]:
            if not count:
                return
            taken = min(count, request.owed)
            request.owed -= taken
            count -= taken
            if not request.owed:
                self.requests.remove(request)

    async def _on_status(
        self, code: int, description: str, pending: int, pending_bytes: int = 0
    ) -> None:
        if code == 100:
            return  # idle heartbeat: the request is alive
        if code == 409 and description == "Batch Completed":
            # its count ended it, with bytes left (counted off already if
            # the server is too old to say so: then this never comes)
            self._end_request(used_up=True)
            await self._top_up()
            return
        if code == 423 and self.role is not None:
            # (Nats-Pin-Id mismatch, Nats-Wrong-Pin-Id) a pull with our pin
            # id: the pin is another's now (or forgotten by a new leader)
            self._end_request(pinned=True)
            self.role.lost(description)
            await self._top_up()
            return
        self._end_request(pending=pending, expired=code == 408)  # any other status ends one
        if code in (404, 408):
            pass  # no (more) messages before it expired
        elif code == 409 and description in ENDED_BY_BYTES:
            # Its max_bytes are used up.  When it got nothing, the next message
            # is larger than the requests: ask with room for the largest.
            got_nothing = (
                pending_bytes >= self.request_bytes if pending_bytes else pending >= self.batch
            )
            if got_nothing and self.request_bytes < self.largest:
                if self.binding.max_request_max_bytes and (
                    self.request_bytes >= self.binding.max_request_max_bytes
                ):
                    self.log.warning(
                        "A message is larger than the consumer's max_request_max_bytes",
                        max_request_max_bytes=self.binding.max_request_max_bytes,
                    )
                    self._pause(1.0)
                else:
                    self.shaper.too_small()
        elif code == 503 or "Consumer Deleted" in description:
            # no responders: the consumer (or its stream) is gone
            if self._repairing is None or self._repairing.done():
                self.log.warning(
                    "The consumer is gone, setting it up again",
                    status=code,
                    description=description,
                )
            self._start_repair()
        elif code == 409 and "Leadership Change" in description:
            self.log.info("Pull request ended by a leader change", status=code)
        elif code == 409 and "Server Shutdown" in description:
            self.log.info("Pull request ended: the server is shutting down", status=code)
        else:
            self.log.warning(
                "Pull request refused by the server", status=code, description=description
            )
            self._pause(1.0)  # no tight loop on a refusal
        await self._top_up()

    def _end_request(
        self, pinned: bool = False, pending: int = 0, used_up: bool = False, expired: bool = False
    ) -> None:
        """Forget the request a status ended: the oldest (carrying a pin id,
        if ``pinned``).  A status that says how many messages the request
        still owed (``pending``; 0: not said) tells which kind it was: of
        those that can owe that many, the one that got the fewest.
        ``used_up``: its count ended it, so it asked for a batch (or the
        consumer's max_batch); ``expired``: it was among those expired by
        now.  With none such, it was forgotten already, and no other is."""
        candidates = [r for r in self.requests if r.pinned or not pinned] or list(self.requests)
        if expired:
            now = time.monotonic()
            candidates = [r for r in candidates if r.expires <= now]
        if used_up:
            limit = max(self.batch, self.binding.max_request_batch)
            candidates = [r for r in candidates if r.count <= limit]
            if not candidates:
                return
            ended = min(candidates, key=lambda r: r.count)  # the oldest of equals
        elif pending:
            candidates = [r for r in candidates if r.count >= pending]
            if not candidates:
                return
            ended = min(candidates, key=lambda r: r.count - pending)  # the oldest of equals
        elif candidates:
            ended = candidates[0]
        else:
            return
        self.requests.remove(ended)
        if pending and ended.by_count and ended.owed != pending:
            # Counted off the oldest first, this one was taken to owe
            # ``owed``: the others owe the difference.
            if ended.owed < pending:
                self._owe_less(pending - ended.owed)
            else:
                for request in self.requests:
                    if request.by_count:
                        request.owed += ended.owed - pending
                        break

    def _pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def _start_repair(self) -> None:
        if self.set_up is not None and (self._repairing is None or self._repairing.done()):
            self._repairing = asyncio.ensure_future(self._repair())

    async def _repair(self) -> None:
        """The consumer (or its stream) is gone: set it up again, then pull."""
        self.paused_until = time.monotonic() + 3600  # no pulls meanwhile
        try:
            await self.set_up_again()
        except Exception as exc:
            self.log.error(
                "Cannot set the consumer up again, will retry", error=str(exc) or type(exc).__name__
            )
            self.repair_retry_at = time.monotonic() + 2.0
            return
        self.repair_retry_at = 0.0
        self.requests.clear()
        self.paused_until = 0.0
        self.last_activity = time.monotonic()
        await self._top_up()

    def on_reconnected(self) -> None:
        """Requests die with the connection they were made on, and so may
        the last acks: they are sent again (``RecentAcks``), then it asks anew."""
        self.requests.clear()
        self.ends_told = ends_are_told(self.nc)
        asyncio.ensure_future(self._after_reconnect())

    async def _after_reconnect(self) -> None:
        await self.resend_acks()
        await self._top_up()

    # -- the frames ------------------------------------------------------------

    async def on_chunk(self, data: bytes | memoryview, reader: ChunkReader | None = None) -> bytes:
        """In nats-py's read loop: parse and format a chunk, queue it for
        writing.  ``reader``: ``data`` is a view of its buffer, and what the
        data path leaves of it comes again with what follows (None: a chunk,
        the data path keeps the rest)."""
        started = time.time_ns()
        try:
            if reader is None:
                fed = self.path.feed(data, started)
            else:
                fed = self.path.feed_frames(data, started)
                reader.taken(fed[12])
        except ProtocolViolation as exc:
            raise nats.errors.ProtocolError from exc
        other, count, statuses = fed[0], fed[5], fed[11]
        self.shaper.fed(len(data) if reader is None else fed[12], count)
        if reader is not None and count:
            reader.fit(self.shaper.per_message)
        if count and self.role is not None:
            pin_id = self.path.pin_id
            if pin_id:
                self.role.pinned(pin_id.decode("ascii", "replace"))
        if count or statuses:
            self.last_activity = time.monotonic()
            self.metrics.pulled()
        if count:
            self._owe_less(count)
            # lines, acks, replies, subjects, count, structured, redelivered,
            # max and min sequence and last chances, as feed() gives them
            batch = _Batch(*fed[1:11], started, time.monotonic())
            long_lines = batch.size >= LONG_LINE * count
            if (
                not self.unappended
                and self.delivery.appends_in_place
                and (long_lines or not self.delivery.sink.fsync)
            ):
                # into the file now, in stream order: only while every batch
                # ahead is in it too; its sync and acks follow in the writer
                ticket = self.delivery.append(batch.lines, (batch.min_sequence, batch.max_sequence))
                if ticket is not None:
                    batch.ticket, batch.appended, batch.lines = ticket, True, b""
            self._enqueue(batch)
            await self._top_up()  # the next batch is asked for before this one is written
            if batch.appended and not self.delivery.sink.fsync and len(self.pending) == 1:
                # No fsync to wait for: acked right here, no hand-off to the writer.
                await self._write(batch)
                self._dequeue()
                await self._top_up()
            else:
                self.queued.set()
        for code, description, pending, pending_bytes in statuses:
            await self._on_status(code, description, pending, pending_bytes)
        return other

    def _enqueue(self, batch: _Batch) -> None:
        """Queue a batch and count what it holds (the pull gate reads the counts)."""
        self.pending.append(batch)
        self.unappended += not batch.appended
        self.pending_count += batch.count
        self.pending_bytes += batch.size
        self.held_bytes += batch.held

    def _dequeue(self) -> None:
        """The oldest batch is written and acked: forget it and its counts."""
        batch = self.pending.popleft()
        self.unappended -= not batch.appended
        self.pending_count -= batch.count
        self.pending_bytes -= batch.size
        self.held_bytes -= batch.held

    async def _write_batches(self) -> None:
        """The writer: what is queued is written in one go, then acked (or
        settled).  Up to WRITES_IN_FLIGHT writes overlap, so the next batches
        go to the page cache while the last ones' fsync waits for the disk
        (the sink's group commit); each is acked as soon as it is synced."""
        writes: deque[tuple[asyncio.Future, int, bool]] = deque()  # (write, batches, overlaps)
        handed = 0  # batches at the head of self.pending given to those writes
        while True:
            if handed < len(self.pending) and (
                not writes or (len(writes) < WRITES_IN_FLIGHT and writes[-1][2])
            ):
                batches = []  # the next run of batches appended already, or of those not
                for queued in itertools.islice(self.pending, handed, None):
                    if batches and queued.appended != batches[0].appended:
                        break
                    batches.append(queued)
                handed += len(batches)
                lines = [] if batches[0].appended else [b.lines for b in batches]
                size = sum(b.size for b in batches)
                count = sum(b.count for b in batches)
                overlaps = size >= max(OVERLAP_MIN_BYTES, LONG_LINE * count)
                write = asyncio.ensure_future(self._write(_Batch.join(batches), lines))
                writes.append((write, len(batches), overlaps))
                continue
            if not writes:
                await self.queued.wait()
                self.queued.clear()
                continue
            waiting = asyncio.ensure_future(self.queued.wait())
            await asyncio.wait({writes[0][0], waiting}, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            self.queued.clear()
            while writes and writes[0][0].done():
                done, taken, _ = writes.popleft()
                done.result()
                for _ in range(taken):
                    self._dequeue()
                handed -= taken
                await self._top_up()

    async def _write(self, batch: _Batch, lines: list[bytes] | None = None) -> None:
        """Write the batch's lines (given as parts: written with one writev),
        or sync them if appended already, then ack; or NAK and TERM."""
        if batch.appended:
            written = await self.delivery.sync(batch.ticket, self._in_progress)
        else:
            sequences = (batch.min_sequence, batch.max_sequence)
            written = await self.delivery.write(lines or [], self._in_progress, sequences)
        if written:
            await self.nc._send_command(batch.acks)  # only now: the lines are written
            await self.nc._flush_pending()
            self.recent_acks.keep(batch.acks)
            if self.path.debug:
                now = time.time_ns()
                elapsed = format_duration((now - batch.started_ns) / 1e9)
                await self.delivery.write(
                    processed_lines(self.log.layout, batch.subjects, batch.replies, elapsed, now),
                    self._in_progress,
                )
            self.acked_through = max(self.acked_through, batch.max_sequence)
            self.metrics.batch_written(
                batch.count,
                batch.structured,
                batch.redelivered,
                batch.size,
                batch.arrived,
            )
            return
        max_deliver = self.settings.audit_max_deliver
        await self.nc._send_command(
            settle_frames(batch.replies, max_deliver, self.delivery.nak_payload())
        )
        await self.nc._flush_pending()
        self.metrics.counters.naks += batch.count - len(batch.last_chances)
        for sequence, delivered, excerpt in batch.last_chances:
            self.delivery.terminated(self.binding.stream, sequence, delivered, excerpt)

    async def _in_progress(self) -> int:
        """A write is slow: +WPI for every message delivered and not yet acked,
        the batch being written and those queued behind it."""
        frames = b"".join(reply_frames(batch.replies, b"+WPI") for batch in self.pending)
        await self.nc._send_command(frames)
        await self.nc._flush_pending()
        return sum(batch.count for batch in self.pending)

    async def _ignore(self, msg) -> None:  # nats-py's callback: the tap sees the frames first
        return None

    # -- the life --------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        nats.aio.client.DEFAULT_BUFFER_SIZE = max(nats.aio.client.DEFAULT_BUFFER_SIZE, READ_SIZE)
        keep_freed_buffers()
        self.inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(self.inbox, cb=self._ignore)
        self.path = DataPath(
            sub._id,
            self.log.layout,
            self.log.enabled("info"),
            self.log.enabled("debug"),
            self.settings.audit_max_deliver,
        )
        writer = asyncio.ensure_future(self._write_batches())
        self.nc._ps = _Tap(self.nc._ps, self)
        self.log.info(
            "Starting to listen for JetStream events",
            subject=self.binding.subject,
            stream=self.binding.stream,
            consumer=self.binding.durable,
            engine=self.name,
            **(
                {
                    "ha": "pinned",
                    "group": self.binding.priority_group,
                    "priority_timeout": format_duration(self.binding.priority_timeout),
                }
                if self.binding.priority_group
                else {}
            ),
        )
        try:
            await self._top_up()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.heartbeat)
                except TimeoutError:
                    pass
                await self._watch()
        finally:
            await self._finish()
            writer.cancel()
            try:
                await sub.unsubscribe()
            except Exception:  # the connection may be gone already
                pass

    async def _watch(self) -> None:
        """Re-issue the pull when it went silent (its requests were lost)."""
        if not self.nc.is_connected:
            return
        silent = time.monotonic() - self.last_activity
        if self.requests and silent > 2 * self.heartbeat + 0.5:
            self.log.warning("Pull went silent, re-issuing its requests", silent_s=round(silent, 1))
            self.requests.clear()
            self.last_activity = time.monotonic()
            if not await self._consumer_exists():
                self._start_repair()
                return
        if self.repair_retry_at and time.monotonic() >= self.repair_retry_at:
            self._start_repair()  # the last repair failed: try again
        await self._top_up()

    async def _consumer_exists(self) -> bool:
        try:
            await self.js.consumer_info(self.binding.stream, self.binding.durable)
        except NotFoundError:
            return False
        except Exception:
            return True  # cannot tell (timeout, no responders): keep pulling
        return True

    async def _finish(self) -> None:
        """Stop asking; messages of requests still in flight are written and
        acked until those requests are filled or expire."""
        self.stopping = True
        if self.role is not None and await self._hand_over():
            return
        deadline = time.monotonic() + self.expires + 1.0
        while self.requests and self.nc.is_connected and time.monotonic() < deadline:
            now = time.monotonic()
            while self.requests and self.requests[0].expires + 0.2 < now:
                self.requests.popleft()  # expired at the server by now
            await asyncio.sleep(0.02)
        await self._drain()

    async def _hand_over(self) -> bool:
        """--audit-ha=pinned: unpin first, so that the server delivers no more
        here and a standby takes over at once; then write and ack what came
        (acks need no pin).  Standby pulls deliver nothing, unless one was
        pinned just now: then that pin is given back as well.  False when the
        pin could not be given back: its pulls go on delivering."""
        for _ in range(2):
            if self.role.active and self.nc.is_connected:
                await self.role.release()
            try:  # a round trip: what the server sent before is taken in
                await self.nc.flush(timeout=2)
            except Exception:
                pass
            await self._drain()
            if not self.role.active:
                return True
        return False

    async def _drain(self) -> None:
        # what was delivered is written and acked before the connection closes
        deadline = time.monotonic() + max(self.settings.audit_ack_wait, 5.0)
        while self.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # not written in time (a stuck log output): back to the server at once
        unwritten = b"".join(reply_frames(batch.replies, b"-NAK") for batch in self.pending)
        if unwritten:
            await self.nc._send_command(unwritten)
            await self.nc._flush_pending()
