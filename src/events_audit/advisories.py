"""Messages the server gave up on: named in the log, not lost without a word.

A consumer the service creates never gives a message up at the server (its
max_deliver is -1; --audit-max-deliver is applied by the service).  A reused
consumer may have a finite max_deliver: once a message reaches it, nats-server
stops delivering it and says so only in a MAX_DELIVERIES advisory.  While the
service runs it listens for those and writes an error line per message, with
its stream sequence and, read back from the stream, the start of its payload.
"""

from __future__ import annotations

import json

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from .jetstream import Binding
from .logs import Logger
from .metrics import Metrics

MAX_DELIVERIES = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"
EXCERPT_BYTES = 256
# Its error line (events-audit verify reads it back).
GIVEN_UP = "Message given up by the server after the consumer's max_deliver: not logged"


async def watch_given_up(
    nc: Client, js: JetStreamContext, binding: Binding, log: Logger, metrics: Metrics
) -> Subscription | None:
    """Report every message the consumer gives up on (None: it never does)."""
    if binding.server_max_deliver <= 0:
        return None  # no advisory to wait for (and no permission to ask for)

    async def given_up(msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            sequence = int(advisory["stream_seq"])
            deliveries = int(advisory.get("deliveries") or 0)
        except (ValueError, KeyError, TypeError):
            return  # not an advisory of this kind
        fields: dict = {}
        try:
            stored = await js.get_msg(binding.stream, seq=sequence)
        except NotFoundError:
            fields["in_stream"] = False
        except Exception as exc:  # cannot tell now; the sequence is what counts
            fields["lookup_error"] = str(exc) or type(exc).__name__
        else:
            fields["in_stream"] = True
            fields["payload_excerpt"] = (stored.data or b"")[:EXCERPT_BYTES].decode(
                "utf-8", "surrogateescape"
            )
        metrics.counters.given_up += 1
        log.error(
            GIVEN_UP,
            stream=binding.stream,
            consumer=binding.durable,
            sequence=sequence,
            delivered=deliveries,
            **fields,
        )

    subject = MAX_DELIVERIES.format(stream=binding.stream, consumer=binding.durable)
    return await nc.subscribe(subject, cb=given_up)
