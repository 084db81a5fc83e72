"""Reading a window of the stream without touching the service's consumer.

``verify`` (which gaps are still in the stream) and ``replay`` (their lines)
read through nats-py's ordered consumer: an ephemeral push consumer in
memory, acks none, flow control and heartbeats, recreated by nats-py from
the last sequence when a message goes missing.  The durable consumer is not
touched, so a running service is not disturbed.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from .config import Settings
from .nats_urls import redact_url, server_urls
from .server import connection_options

# How long a window may stay silent with messages still pending before the
# read is given up (the ordered consumer's heartbeats come every 5 s).
SILENCE_LIMIT = 30.0
# How long a tool waits for its first connection.
CONNECT_WAIT = 10.0
# What nats-py may hold for the reader: flow control keeps the server at it.
PENDING_BYTES = 64 << 20


class WindowError(Exception):
    """The stream cannot be read."""


async def connect(settings: Settings) -> nats.NATS:
    """One connection for a tool: no reconnects, errors are the tool's."""
    urls = server_urls(settings.audit_nats_addr)
    errors: list[Exception] = []

    async def note(exc: Exception) -> None:
        errors.append(exc)

    # nats-py retries a first connection that fails, however it is told: a
    # tool gives up once every server failed twice, or after CONNECT_WAIT
    connecting = asyncio.ensure_future(
        nats.connect(
            servers=urls,
            name="events-audit-tool",
            connect_timeout=5,
            allow_reconnect=False,
            error_cb=note,
            **connection_options(settings),
        )
    )
    deadline = time.monotonic() + CONNECT_WAIT
    while not connecting.done() and len(errors) < 2 * len(urls) and time.monotonic() < deadline:
        await asyncio.wait({connecting}, timeout=0.1)
    where = ", ".join(redact_url(url) for url in urls)
    if not connecting.done():
        connecting.cancel()
        reason = errors[-1] if errors else f"no answer in {CONNECT_WAIT:g} s"
        raise WindowError(f"cannot connect to NATS at {where}: {reason}")
    try:
        return connecting.result()
    except Exception as exc:
        raise WindowError(
            f"cannot connect to NATS at {where}: {exc or type(exc).__name__}"
        ) from None


async def stream_state(js: Any, stream: str) -> dict | None:
    """first_seq, last_seq, messages and num_deleted of a stream, or None
    when there is no such stream."""
    try:
        info = await js.stream_info(stream)
    except NotFoundError:
        return None
    state = info.state
    return {
        "first_seq": state.first_seq,
        "last_seq": state.last_seq,
        "messages": state.messages,
        "num_deleted": state.num_deleted or 0,
    }


async def read_window(
    js: Any,
    stream: str,
    subject: str,
    first_seq: int = 0,
    last_seq: int = 0,
    start_time: datetime.datetime | None = None,
    end_time: datetime.datetime | None = None,
    headers_only: bool = False,
) -> AsyncIterator[Any]:
    """The stream's messages on ``subject`` from ``first_seq`` (or
    ``start_time``) up to ``last_seq`` / ``end_time`` (0 / None: what the
    stream holds when the read reaches its end), in order."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.BY_START_TIME
        if start_time
        else DeliverPolicy.BY_START_SEQUENCE,
        opt_start_seq=None if start_time else max(1, first_seq),
        opt_start_time=start_time.isoformat() if start_time else None,
    )
    try:
        sub = await js.subscribe(
            subject,
            stream=stream,
            ordered_consumer=True,
            config=config,
            headers_only=headers_only or None,
            pending_bytes_limit=PENDING_BYTES,
        )
    except Exception as exc:
        raise WindowError(f"cannot read stream {stream!r}: {exc or type(exc).__name__}") from None
    try:
        info = await sub.consumer_info()
        if not info.num_pending and not info.delivered.consumer_seq:
            return  # nothing on the subject from there (what was pushed counts as delivered)
        silent = 0.0
        while True:
            try:
                msg = await sub.next_msg(timeout=1.0)
            except nats.errors.TimeoutError:
                silent += 1.0
                if silent >= SILENCE_LIMIT:
                    raise WindowError(
                        f"stream {stream!r} sent nothing for {SILENCE_LIMIT:g} s"
                        " with messages pending"
                    ) from None
                continue
            silent = 0.0
            meta = msg.metadata
            if last_seq and meta.sequence.stream > last_seq:
                return
            if end_time and meta.timestamp > end_time:
                return
            yield msg
            if meta.num_pending == 0 or (last_seq and meta.sequence.stream >= last_seq):
                return
    finally:
        try:
            await sub.unsubscribe()
        except Exception:  # the connection may be gone
            pass
