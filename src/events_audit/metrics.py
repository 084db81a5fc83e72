"""What operators watch: counters, /metrics, /ready and the stats line.

The engines add to plain integer counters once per batch (never per
message); /metrics reads them at scrape time through a collector, and the
stats line every --stats-interval is built from the same numbers.  Consumer
lag comes from consumer info, polled in the background.  prometheus-client
is imported at the first scrape: it is a tenth of the start-up otherwise.
"""

from __future__ import annotations

import asyncio
import platform
import time
from bisect import bisect_left
from dataclasses import dataclass, fields

from . import __version__

PREFIX = "events_audit_"


@dataclass
class Counters:
    structured: int = 0  # events logged as structured
    raw: int = 0  # events logged as raw
    acks: int = 0
    naks: int = 0
    terms: int = 0
    in_progress: int = 0  # +WPI sent for messages whose batch was still being written
    redelivered: int = 0  # messages seen with a delivery count above 1
    bytes_written: int = 0
    write_errors: int = 0
    reconnects: int = 0
    acks_resent: int = 0  # acks sent again after a reconnect (RecentAcks)
    output_reopens: int = 0  # the log file was removed or replaced under the service
    dead_connections: int = 0  # closed because they carried nothing (unanswered pings)
    upstream_lost: int = 0  # events the stream lost before they were logged (upstream.py)
    given_up: int = 0  # messages the server stopped delivering (the consumer's max_deliver)


_HELP = {
    "acks": "Messages acknowledged after their line was written",
    "naks": "Messages negatively acknowledged (their line could not be written)",
    "terms": "Messages terminated at their last delivery",
    "in_progress": "In-progress acks sent while a batch was being written",
    "redelivered": "Messages received with a delivery count above 1",
    "bytes_written": "Bytes of log lines written",
    "write_errors": "Failed writes to the log output",
    "reconnects": "Reconnections to NATS",
    "acks_resent": "Acks sent again after a reconnect (the last ones may have died with it)",
    "output_reopens": "Times the log file was found removed or replaced and reopened",
    "dead_connections": "Connections closed because NATS answered no pings",
    "upstream_lost": "Events removed from the stream before they were logged "
    "(a stream that went back: 1 per finding)",
    "given_up": "Messages the server gave up on after the consumer's max_deliver (not logged)",
}


class Buckets:
    """A histogram's counts: one per upper bound, then +Inf (not cumulative)."""

    def __init__(self, name: str, help: str, bounds: tuple[float, ...]) -> None:
        self.name, self.help, self.bounds = name, help, bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # le: value <= bound
        self.sum += value

    def family(self):
        from prometheus_client.core import HistogramMetricFamily
        from prometheus_client.utils import floatToGoString

        cumulative, total = [], 0
        labels = (*map(floatToGoString, self.bounds), "+Inf")
        for bound, count in zip(labels, self.counts, strict=True):
            total += count
            cumulative.append((bound, total))
        return HistogramMetricFamily(self.name, self.help, buckets=cumulative, sum_value=self.sum)


class Metrics:
    def __init__(self, engine: str = "") -> None:
        self.counters = Counters()
        self.engine = engine
        self.connected = False
        self.consumer_bound = False
        self.num_pending: int | None = None  # consumer lag, from consumer info
        self.num_ack_pending: int | None = None
        self.last_pull = 0.0  # monotonic time of the last completed pull cycle
        # --audit-ha=pinned: "active" while this instance holds the pin, else
        # "standby"; without it every instance consumes ("active")
        self.role = "active"
        self.ha_failovers = 0  # times this instance became the active one
        self.pull_timeout = 5.0
        self.registry = None  # made at the first scrape
        self.batch_size = Buckets(
            PREFIX + "batch_size",
            "Messages per written batch",
            (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000),
        )
        self.batch_latency = Buckets(
            PREFIX + "batch_seconds",
            "Time from receiving a batch to acking it",
            (0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30),
        )

    # -- updates from the engines (once per batch) ---------------------------

    def batch_written(
        self, count: int, structured: int, redelivered: int, size: int, started: float
    ) -> None:
        c = self.counters
        c.structured += structured
        c.raw += count - structured
        c.acks += count
        c.redelivered += redelivered
        c.bytes_written += size
        self.batch_size.observe(count)
        self.batch_latency.observe(time.monotonic() - started)

    def pulled(self) -> None:
        self.last_pull = time.monotonic()

    # -- readiness -----------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        if not self.connected:
            return False, "not connected to NATS"
        if not self.consumer_bound:
            return False, "consumer not bound yet"
        silent = time.monotonic() - self.last_pull
        if silent > 3 * self.pull_timeout + 1:
            return False, f"no pull cycle completed for {silent:.0f}s"
        return True, "ready"

    # -- prometheus ------------------------------------------------------------------

    def collect(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            InfoMetricFamily,
        )

        c = self.counters
        events = CounterMetricFamily(PREFIX + "events", "Events logged, by kind", labels=["kind"])
        events.add_metric(["structured"], c.structured)
        events.add_metric(["raw"], c.raw)
        yield events
        for field in fields(Counters):
            if field.name in _HELP:
                yield CounterMetricFamily(
                    PREFIX + field.name, _HELP[field.name], value=getattr(c, field.name)
                )
        if self.num_pending is not None:
            yield GaugeMetricFamily(
                PREFIX + "consumer_num_pending",
                "Messages not yet delivered to the consumer (lag)",
                value=self.num_pending,
            )
            yield GaugeMetricFamily(
                PREFIX + "consumer_num_ack_pending",
                "Messages delivered and not yet acknowledged",
                value=self.num_ack_pending,
            )
        yield GaugeMetricFamily(
            PREFIX + "ha_active",
            "1 while this instance consumes (with --audit-ha=pinned: holds the pin)",
            value=int(self.role == "active"),
        )
        yield CounterMetricFamily(
            PREFIX + "ha_failovers",
            "Times this instance became the active one (--audit-ha=pinned)",
            value=self.ha_failovers,
        )
        yield GaugeMetricFamily(
            PREFIX + "connected", "1 when connected to NATS", value=int(self.connected)
        )
        yield GaugeMetricFamily(
            PREFIX + "ready", "1 when /ready answers 200", value=int(self.readiness()[0])
        )
        yield InfoMetricFamily(
            PREFIX + "build",
            "Version and data path",
            value={
                "version": __version__,
                "engine": self.engine,
                "python": platform.python_version(),
            },
        )
        yield self.batch_size.family()
        yield self.batch_latency.family()

    def exposition(self) -> tuple[int, str, bytes]:
        from prometheus_client import CollectorRegistry, generate_latest
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        if self.registry is None:
            self.registry = CollectorRegistry()
            self.registry.register(self)
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    # -- the stats line ------------------------------------------------------------

    def stats_fields(self, previous: Counters, seconds: float) -> dict:
        c = self.counters
        events = c.structured + c.raw
        before = previous.structured + previous.raw
        result = {
            "stats_role": self.role,
            "stats_interval_s": round(seconds, 3),
            "stats_events": events,
            "stats_events_per_s": round((events - before) / seconds, 1) if seconds else 0.0,
            "stats_structured": c.structured,
            "stats_raw": c.raw,
            "stats_acks": c.acks,
            "stats_naks": c.naks,
            "stats_terms": c.terms,
            "stats_redelivered": c.redelivered,
            "stats_write_errors": c.write_errors,
            "stats_given_up": c.given_up,
            "stats_upstream_lost": c.upstream_lost,
            "stats_bytes_written": c.bytes_written,
        }
        if self.num_pending is not None:
            result["stats_lag"] = self.num_pending
            result["stats_ack_pending"] = self.num_ack_pending
        return result


async def poll_consumer(metrics: Metrics, js, stream: str, durable: str, interval: float) -> None:
    """Keep num_pending / num_ack_pending fresh (runs until cancelled)."""
    while True:
        try:
            info = await js.consumer_info(stream, durable, timeout=2)
            metrics.num_pending = info.num_pending
            metrics.num_ack_pending = info.num_ack_pending
        except asyncio.CancelledError:
            raise
        except Exception:
            pass  # not reachable now; the last values stay
        await asyncio.sleep(interval)


async def stats_loop(metrics: Metrics, log, interval: float) -> None:
    """One info line every interval with rates since the last one."""
    previous = Counters(**vars(metrics.counters))
    last = time.monotonic()
    while True:
        await asyncio.sleep(interval)
        now = time.monotonic()
        log.info("Audit stats", **metrics.stats_fields(previous, now - last))
        previous = Counters(**vars(metrics.counters))
        last = now
