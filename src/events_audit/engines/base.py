"""What both engines share: their collaborators, the write-then-ack outcome
(``Delivery``) and setting the consumer up again after a deletion."""

from __future__ import annotations

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

    async def set_up_again(self) -> None:
        """The consumer (or its stream) was deleted: create it again.  The new
        consumer resumes after the last acked sequence when it is the same
        stream, and starts at its beginning when the stream is a new one."""
        if self.set_up is None:
            raise RuntimeError("no set-up to repeat")
        old_stream = self.binding.stream_created
        self.binding = await self.set_up(Resume(old_stream, self.acked_through))
        if self.binding.stream_created != old_stream:
            self.acked_through = 0  # a new stream: its sequences start again
