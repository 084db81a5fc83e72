"""Loss upstream: events the stream lost before the service logged them.

The server's sequence numbers are the evidence.  Compared at start and then
every few seconds:
- at start, the stream's first sequence against the consumer's ack floor:
  what lies between was removed before it was logged (limits, a purge);
- while running, how far the consumer's delivered stream sequence moved
  against how many deliveries it made (less this instance's redeliveries):
  the sequences it skipped were removed before they could be delivered (the
  server moves a consumer past removed messages without a word).  Only when
  the stream holds nothing but the consumer's subject, so that every
  sequence is one the consumer would deliver;
- the stream's last sequence against what was already logged: a stream that
  went back below it was restored, rolled back or recreated.
Each finding is one error line with the stream and the sequence range,
``events_audit_upstream_lost_total`` and the stats line.  A stream trimmed
only below what was logged is the normal case and says nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from .logs import Logger
from .metrics import Metrics

# Its error lines (events-audit verify reads them back).
REMOVED = "Events removed from the stream before they were logged"
WENT_BACK = "The stream went back below what was already logged"


@dataclass(frozen=True)
class _Seen:
    acked: int  # the consumer's ack floor (stream sequence)
    delivered: int  # the last stream sequence delivered to it
    deliveries: int  # every delivery so far (the consumer sequence)
    redelivered: int  # this instance's redeliveries so far
    last: int  # the stream's last sequence
    created: object  # the stream's creation time


def removal_cause(info: StreamInfo) -> str:
    """What the server's state says removed the oldest messages."""
    config, state = info.config, info.state
    if config.max_msgs and config.max_msgs > 0 and state.messages >= config.max_msgs:
        return "the stream's max_msgs limit"
    if config.max_bytes and config.max_bytes > 0 and state.bytes >= config.max_bytes * 0.9:
        return "the stream's max_bytes limit"
    if config.max_age:
        return "the stream's max_age limit, or a purge"
    return "a purge or a deletion"


class UpstreamWatch:
    def __init__(
        self,
        js: JetStreamContext,
        stream: str,
        durable: str,
        subject: str,
        log: Logger,
        metrics: Metrics,
    ) -> None:
        self.js, self.stream, self.durable, self.subject = js, stream, durable, subject
        self.log, self.metrics = log, metrics
        self.seen: _Seen | None = None

    async def check(self) -> None:
        stream = await self.js.stream_info(self.stream)
        consumer = await self.js.consumer_info(self.stream, self.durable)
        state = stream.state
        now = _Seen(
            consumer.ack_floor.stream_seq if consumer.ack_floor else 0,
            consumer.delivered.stream_seq if consumer.delivered else 0,
            consumer.delivered.consumer_seq if consumer.delivered else 0,
            self.metrics.counters.redelivered,
            state.last_seq,
            stream.created,
        )
        before, self.seen = self.seen, now
        if before is None:  # at start: against what the consumer had logged
            if now.acked and now.acked > now.last:
                # Another instance may have logged events published after the
                # stream was read: read again, after the consumer, the stream
                # holds them unless it really went back.
                last = (await self.js.stream_info(self.stream)).state.last_seq
                if now.acked > last:
                    self._went_back(now.acked, last, "restored or rolled back")
            elif now.acked and state.first_seq - 1 > now.acked:
                self._removed(now.acked + 1, state.first_seq - 1, stream)
            return
        if now.created != before.created:
            if before.acked:
                self._went_back(before.acked, now.last, "recreated")
        elif now.last < before.acked:
            self._went_back(before.acked, now.last, "restored or rolled back")
        elif stream.config.subjects == [self.subject] and now.delivered > before.delivered:
            moved = now.delivered - before.delivered
            new_deliveries = (now.deliveries - before.deliveries) - (
                now.redelivered - before.redelivered
            )
            skipped = min(moved, moved - new_deliveries)
            if skipped > 0:
                last = now.delivered
                if before.delivered < state.first_seq - 1 < last:
                    last = state.first_seq - 1  # the oldest went: they were among these
                self._removed(before.delivered + 1, last, stream, skipped)

    def _removed(self, first: int, last: int, info: StreamInfo, count: int = 0) -> None:
        count = count or last - first + 1  # (fewer when only some of the range went)
        self.metrics.counters.upstream_lost += count
        self.log.error(
            REMOVED,
            stream=self.stream,
            first_sequence=first,  # the range they were in
            last_sequence=last,
            events=count,
            cause=removal_cause(info),
        )

    def _went_back(self, logged_through: int, last: int, how: str) -> None:
        self.metrics.counters.upstream_lost += 1  # one finding: the count is unknown
        self.log.error(
            f"{WENT_BACK} ({how})",
            stream=self.stream,
            logged_through=logged_through,
            stream_last_sequence=last,
        )

    async def run(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.check()
            except Exception:  # no connection, the consumer being set up again: next round
                pass
