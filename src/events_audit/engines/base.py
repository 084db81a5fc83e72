"""What both engines share: their collaborators, the write-then-ack outcome
(``Delivery``) and setting the consumer up again after a deletion."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from nats.aio.client import Client
from nats.js import JetStreamContext

from ..config import Settings
from ..delivery import Delivery
from ..ha import Role
from ..jetstream import Binding, Resume
from ..logs import Logger
from ..metrics import Metrics
from ..sink import Sink

# Recreates the stream (as configured) and the consumer; given where to
# resume, returns the new binding.
SetUp = Callable[[Resume], Awaitable[Binding]]


class RecentAcks:
    """The ack frames last sent, to be sent again after a reconnect: those
    still in the socket buffers when a connection dies die with it, and their
    messages, although written, would come back after the ack wait and be
    logged twice.  Acking a message again is a no-op for the server."""

    LIMIT = 1 << 20  # more than the kernel's socket buffers hold; an ack is ~100 bytes

    def __init__(self) -> None:
        self.frames: deque[bytes] = deque()
        self.size = 0

    def keep(self, frames: bytes) -> None:
        self.frames.append(frames)
        self.size += len(frames)
        while self.size > self.LIMIT and len(self.frames) > 1:
            self.size -= len(self.frames.popleft())


class Engine:
    name = ""

    def __init__(
        self,
        nc: Client,
        js: JetStreamContext,
        binding: Binding,
        settings: Settings,
        log: Logger,
        sink: Sink,
        metrics: Metrics,
        set_up: SetUp | None = None,
        role: Role | None = None,
    ) -> None:
        self.nc = nc
        self.js = js
        self.binding = binding
        self.settings = settings
        self.log = log
        self.sink = sink
        self.metrics = metrics
        self.delivery = Delivery(sink, log, settings, metrics)
        self.set_up = set_up
        self.role = role  # --audit-ha=pinned: active or standby
        self.acked_through = 0  # the highest stream sequence acked
        self.recent_acks = RecentAcks()

    def on_reconnected(self) -> None:
        asyncio.ensure_future(self.resend_acks())

    async def resend_acks(self) -> None:
        """After a reconnect: the last acks again (``RecentAcks`` says why)."""
        frames = b"".join(self.recent_acks.frames)
        if not frames:
            return
        try:
            await self.nc._send_command(frames)
            await self.nc._flush_pending()
        except Exception as exc:  # gone again: the next reconnect sends them
            self.log.warning(
                "Could not send the last acks again", error=str(exc) or type(exc).__name__
            )
            return
        self.metrics.counters.acks_resent += frames.count(b"\r\n\r\n")

    async def set_up_again(self) -> None:
        """The consumer (or its stream) was deleted: create it again.  The new
        consumer resumes after the last acked sequence when it is the same
        stream, and starts at its beginning when the stream is a new one."""
        if self.set_up is None:
            raise RuntimeError("no set-up to repeat")
        old_stream = self.binding.stream_created
        self.binding = await self.set_up(Resume(old_stream, self.acked_through))
        # the old acks name sequences that a new stream may give to events not written yet
        self.recent_acks = RecentAcks()
        if self.binding.stream_created != old_stream:
            self.acked_through = 0  # a new stream: its sequences start again
