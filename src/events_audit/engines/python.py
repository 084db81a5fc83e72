"""The plain nats-py engine: ``fetch()`` a batch, write its lines, ack it."""

from __future__ import annotations

import asyncio
import time

import nats.errors
from nats.js.errors import NotFoundError

from ..batch import Renderer, count_structured
from ..datapath import reply_frames
from .base import Engine

# A message's frame beyond its data, subject and reply (headers, the MSG line).
FRAME_OVERHEAD = 512
# The bound never falls below this: small events fetch --audit-pull-max-messages.
MIN_MESSAGE_BOUND = 16 << 10


class PythonEngine(Engine):
    name = "python"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.renderer = Renderer(self.log)
        # the largest recent message; until one is seen, the largest allowed
        self.message_bound = (getattr(self.nc, "max_payload", 0) or 1 << 20) + FRAME_OVERHEAD

    async def run(self, stop: asyncio.Event) -> None:
        psub = await self.js.pull_subscribe_bind(
            durable=self.binding.durable, stream=self.binding.stream
        )
        self.log.info(
            "Starting to listen for JetStream events",
            subject=self.binding.subject,
            stream=self.binding.stream,
            consumer=self.binding.durable,
        )
        timeout = self.settings.audit_pull_timeout
        try:
            while not stop.is_set():
                if self.delivery.paused:  # the log output failed: wait before pulling more
                    await _sleep_unless(stop, self.delivery.paused_until - time.monotonic())
                    continue
                # No heartbeat: nats-py (2.16) sends one without "expires" when
                # messages are already queued, the server refuses that, and
                # fetch() drops the queued messages.  Each fetch is a fresh
                # request with its own timeout, so a lost one ends anyway.
                fetch = asyncio.ensure_future(psub.fetch(self.fetch_size(), timeout=timeout))
                stopped = asyncio.ensure_future(stop.wait())
                await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not fetch.done():
                    # Stopping: let the pull in flight finish, its messages
                    # are written and acked; it ends by its own expiry.
                    await asyncio.wait({fetch}, timeout=timeout + 1.0)
                stopped.cancel()
                if not fetch.done():
                    fetch.cancel()
                    continue
                try:
                    msgs = fetch.result()
                except nats.errors.TimeoutError:
                    self.metrics.pulled()
                    continue
                except asyncio.CancelledError:
                    continue
                except Exception as exc:  # connection lost, consumer deleted, ...
                    self.log.error("Failed to fetch messages", error=str(exc))
                    await self._repair_if_gone()
                    await _sleep_unless(stop, 1.0)
                    continue
                self.metrics.pulled()
                self.sized(msgs)
                await self.process(msgs)
        finally:
            await self._nak_leftovers(psub)
            try:
                await psub.unsubscribe()
            except Exception:  # the connection may be gone already
                pass

    def fetch_size(self) -> int:
        """Messages to fetch: --audit-pull-max-messages, but no more than
        half of --audit-pull-max-bytes of the largest recent message.
        nats-py's fetch() has no max_bytes, and a fetch of large events that
        the service reads more slowly than the server sends makes the server
        drop the connection as a slow consumer.  Half: a fetch is held three
        times over (nats-py's read buffer, its messages, their lines); with
        all of it the peak RSS reached 65 MB at 256 KiB and 1 MiB."""
        return max(
            1,
            min(
                self.settings.audit_pull_max_messages,
                self.settings.audit_pull_max_bytes // 2 // self.message_bound,
            ),
        )

    def sized(self, msgs: list) -> None:
        # Up at once, down by halves: a fetch of large events after small ones
        # can still be one --audit-pull-max-messages long.
        if not msgs:
            return
        largest = max(len(m.data) + len(m.reply) + len(m.subject) for m in msgs) + FRAME_OVERHEAD
        self.message_bound = max(largest, self.message_bound // 2, MIN_MESSAGE_BOUND)

    async def _repair_if_gone(self) -> None:
        """Recreate the consumer (and stream) when a deletion broke the pull."""
        try:
            await self.js.consumer_info(self.binding.stream, self.binding.durable)
            return
        except NotFoundError:
            pass
        except Exception:
            return  # cannot tell now
        try:
            await self.set_up_again()
        except Exception as exc:
            self.log.error(
                "Cannot set the consumer up again, will retry", error=str(exc) or type(exc).__name__
            )

    async def process(self, msgs: list) -> None:
        started = time.time_ns()
        arrived = time.monotonic()
        subjects = [m.subject for m in msgs]
        replies = [m.reply for m in msgs]
        lines = self.renderer.before_ack(subjects, replies, [m.data for m in msgs], started)

        async def in_progress() -> int:
            for m in msgs:
                await m.in_progress()
            return len(msgs)

        numbers = [m.metadata.sequence.stream for m in msgs if m.reply]
        sequences = (min(numbers), max(numbers)) if numbers else (0, 0)
        if not await self.delivery.write(lines, in_progress, sequences):
            delay = self.delivery.nak_delay()
            max_deliver = self.settings.audit_max_deliver
            for m in msgs:
                meta = m.metadata
                if max_deliver > 0 and meta.num_delivered >= max_deliver:
                    await m.term()
                    self.delivery.terminated(
                        meta.stream, meta.sequence.stream, meta.num_delivered, m.data
                    )
                else:
                    await m.nak(delay=delay)
                    self.metrics.counters.naks += 1
            return
        redelivered = 0
        for m in msgs:  # only now: each line is written
            await m.ack()
            meta = m.metadata
            self.acked_through = max(self.acked_through, meta.sequence.stream)
            redelivered += meta.num_delivered > 1
        # the frames m.ack() sent (PUB <reply> 0), as the fast engine builds them
        self.recent_acks.keep(
            reply_frames(b"".join(m.reply.encode() + b"\n" for m in msgs if m.reply), b"")
        )
        structured = count_structured(lines, self.log.layout)
        self.metrics.batch_written(len(msgs), structured, redelivered, len(lines), arrived)
        await self.delivery.write(self.renderer.after_ack(subjects, replies, started), in_progress)

    async def _nak_leftovers(self, psub) -> None:
        """NAK what was delivered but not handed out, so it is redelivered now."""
        queue = getattr(getattr(psub, "_sub", None), "_pending_queue", None)
        while queue is not None and not queue.empty():
            msg = queue.get_nowait()
            if msg.reply and msg.reply.startswith("$JS.ACK."):
                try:
                    await msg.nak()
                except Exception:
                    return


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), timeout=seconds)
    except TimeoutError:
        pass
