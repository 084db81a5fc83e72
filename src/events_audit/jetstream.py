"""Stream and durable pull consumer set-up, as the original does it (fixed).

The original creates its consumer with ``Name: --audit-consumer-name`` and
``Durable: --audit-durable-name``; nats-server >= 2.9 rejects a name that
differs from the durable name, so the original cannot start with its own
defaults.  Here the durable name is the consumer's one identity: it is used
as both name and durable name, and a --audit-consumer-name that a user set to
something else draws a warning.
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    ConsumerInfo,
    DeliverPolicy,
    DiscardPolicy,
    ReplayPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from . import ha, stream_limits
from .config import Settings
from .logs import Logger


class SetupError(Exception):
    """The stream or consumer cannot be used as configured."""


@dataclass(frozen=True)
class Binding:
    stream: str
    durable: str
    subject: str
    stream_created: object = None  # tells a recreated stream from the old one
    # the consumer's limits on pull requests (0: none)
    max_request_batch: int = 0
    max_request_expires: float = 0.0
    max_request_max_bytes: int = 0
    server_max_deliver: int = -1  # the consumer's own max_deliver (-1: never gives up)
    # --audit-ha=pinned: the priority group pulled with ("" without), the
    # consumer's priority_timeout (s) and the pin it had when bound
    priority_group: str = ""
    priority_timeout: float = 0.0
    pinned_at_start: str = ""


@dataclass(frozen=True)
class Resume:
    """Where a consumer recreated under a running service picks up."""

    stream_created: object  # the stream the service was bound to
    acked_through: int  # the highest stream sequence it acked


def consumer_name(settings: Settings, log: Logger) -> str:
    """The name used for the consumer: the durable name (see module doc)."""
    durable = settings.audit_durable_name
    if settings.audit_consumer_name != durable and settings.is_set("audit-consumer-name"):
        log.warning(
            "Consumer name differs from the durable name; nats-server requires them to be "
            "equal, so the durable name is used",
            consumer=settings.audit_consumer_name,
            durable=durable,
        )
    return durable


def stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.audit_stream_name,
        subjects=[settings.audit_topic],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_age=settings.audit_stream_max_age,
        max_bytes=settings.audit_stream_max_bytes,
        max_msgs=settings.audit_stream_max_msgs,
        num_replicas=settings.audit_stream_replicas,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings, log: Logger) -> bool:
    """Create the stream, or give it the configured limits, when
    --audit-create-stream.  An existing stream gets only the limits given
    explicitly, and none that would remove events not logged yet
    (stream_limits); False when such a limit was held back (call again
    later: it is applied once the backlog is logged)."""
    name = settings.audit_stream_name
    want = stream_config(settings)
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        if not settings.audit_create_stream:
            raise SetupError(
                f"stream {name!r} does not exist and --audit-create-stream=false"
            ) from None
        await js.add_stream(want)
        log.info("Created JetStream stream", stream=name, subjects=want.subjects)
        return True
    if not settings.audit_create_stream:
        log.info("Using existing JetStream stream", stream=name)
        return True
    changes = stream_limits.wanted_changes(settings, info)
    if not changes:
        log.info("Using existing JetStream stream", stream=name)
        return True
    pending = await stream_limits.backlog(js, settings, info)
    held = await stream_limits.held_back(js, settings, info, changes, pending)
    for field, why in held.items():
        log.warning(
            "Stream limit not applied yet: it would remove events not logged yet; "
            "it is applied once they are logged",
            stream=name,
            limit=field,
            current=stream_limits.shown(field, stream_limits.current(info, field)),
            configured=stream_limits.shown(field, changes.pop(field)),
            unlogged_events=pending.messages,
            **why,
        )
    if changes:
        # The subjects, storage and policies of an existing stream are kept.
        update = StreamConfig.from_response(info.config.as_dict())
        for field, value in changes.items():
            setattr(update, field, value)
        if update.max_age and (update.duplicate_window or 0) > update.max_age:
            update.duplicate_window = update.max_age  # the server refuses a longer window
        await js.update_stream(update)
        log.info(
            "Updated JetStream stream",
            stream=name,
            **{
                field: f"{stream_limits.shown(field, value)} "
                f"(was {stream_limits.shown(field, stream_limits.current(info, field))})"
                for field, value in changes.items()
            },
        )
    return not held


async def apply_held_limits(
    js: JetStreamContext, settings: Settings, log: Logger, interval: float
) -> None:
    """Until every configured limit is applied: try again every ``interval``."""
    last_error = ""
    while True:
        await asyncio.sleep(interval)
        try:
            if await ensure_stream(js, settings, log):
                return
        except Exception as exc:  # no connection just now, a refusal: the next round
            error = str(exc) or type(exc).__name__
            if error != last_error:
                log.warning("Cannot apply the stream limits yet, will retry", error=error)
            last_error = error


# How many messages the fast engine keeps asked for at the server.  A deep
# pipeline is what lets the server stream: with only 4 x 100 asked for, it
# idled whenever a batch was being written and fsynced (measured: 1.4x more
# msgs/s at 1,600 than at 400 in the same run).
PULL_CREDIT = 1600


def requests_in_flight(batch: int) -> int:
    """Pull requests of ``batch`` messages kept at the server: PULL_CREDIT
    messages' worth, at least 4 and at most 64 requests."""
    return max(4, min(64, -(-PULL_CREDIT // max(batch, 1))))


# Room for every message asked for plus as many being written and acked, so
# the server never waits on the ack-pending limit while the pipeline is full.
def max_ack_pending(settings: Settings) -> int:
    batch = settings.audit_pull_max_messages
    return max(1000, 2 * requests_in_flight(batch) * batch)


def consumer_config(settings: Settings, name: str) -> ConsumerConfig:
    return ConsumerConfig(
        max_ack_pending=max_ack_pending(settings),
        name=name,
        durable_name=name,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        replay_policy=ReplayPolicy.INSTANT,
        ack_wait=settings.audit_ack_wait,
        # The server never gives a message up: a service killed while it holds
        # messages (a crash loop) would make it drop them after max_deliver
        # deliveries without a line.  --audit-max-deliver is applied by the
        # service, which TERMs only what it failed to write, with an error line.
        max_deliver=-1,
        filter_subject=settings.audit_topic,
    )


# nats-py's ConsumerInfo drops the fields it does not know (the priority
# groups among them): these two requests keep the raw answer as well.
async def consumer_info(js: JetStreamContext, stream: str, name: str) -> tuple[ConsumerInfo, dict]:
    prefix = getattr(js, "_prefix", "$JS.API")
    raw = await js._api_request(f"{prefix}.CONSUMER.INFO.{stream}.{name}", b"", timeout=js._timeout)
    return ConsumerInfo.from_response(copy.deepcopy(raw)), raw


async def create_consumer(
    js: JetStreamContext, stream: str, config: ConsumerConfig, extra: dict
) -> tuple[ConsumerInfo, dict]:
    """Create (never update: "action" create) with fields nats-py lacks."""
    prefix = getattr(js, "_prefix", "$JS.API")
    request = {
        "stream_name": stream,
        "config": {**config.as_dict(), **extra},
        "action": "create",
    }
    subject = f"{prefix}.CONSUMER.CREATE.{stream}.{config.name}"
    if config.filter_subject and config.filter_subject != ">":
        subject += f".{config.filter_subject}"
    raw = await js._api_request(subject, json.dumps(request).encode(), timeout=js._timeout)
    return ConsumerInfo.from_response(copy.deepcopy(raw)), raw


def _pinned_id(raw: dict) -> str:
    groups = raw.get("priority_groups") or []
    return str(groups[0].get("pinned_client_id") or "") if groups else ""


async def ensure_consumer(
    js: JetStreamContext, settings: Settings, log: Logger, resume: Resume | None = None
) -> Binding:
    """A durable pull consumer: reuse a pull one, replace a push one, else create.

    ``resume``: the consumer is recreated under a running service (it was
    deleted); if its stream is the one the service was bound to, the new
    consumer starts after the last acked sequence instead of logging the whole
    stream again.  A recreated stream (another creation time) starts at 1.
    """
    stream = settings.audit_stream_name
    name = consumer_name(settings, log)
    raw: dict = {}
    try:
        info, raw = await consumer_info(js, stream, name)
    except NotFoundError:
        info = None
    if info is not None and info.config.deliver_subject:
        log.info("Deleting existing push consumer", stream=stream, durable=name)
        await js.delete_consumer(stream, name)
        info, raw = None, {}
    if info is not None:
        # before anything else is said of it: one that does not fit is refused
        priority = ha.check_consumer(raw.get("config") or {}, settings, stream, name, log)
        log.info("Using existing JetStream consumer", stream=stream, consumer=name, durable=name)
        server_gives_up = info.config.max_deliver or -1
        if server_gives_up > 0:
            log.warning(
                "The consumer gives a message up after max_deliver deliveries at the server: "
                "a service killed that often while holding it loses it (each is reported "
                "from the server's advisory while the service runs); to rule that out, set "
                "its max_deliver to -1 (nats consumer edit) or let the service create it",
                stream=stream,
                consumer=name,
                max_deliver=server_gives_up,
            )
    stream_info = await js.stream_info(stream)
    if info is None:
        config = consumer_config(settings, name)
        if (
            resume is not None
            and resume.acked_through
            and resume.stream_created == stream_info.created
        ):
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = resume.acked_through + 1
        fields = ha.consumer_fields(settings)
        if fields:
            info, raw = await create_consumer(js, stream, config, fields)
        else:
            info = await js.add_consumer(stream, config)
        # (a server older than 2.11 drops the priority fields: that is refused)
        priority = ha.check_consumer(raw.get("config") or {}, settings, stream, name, log)
        log.info(
            "Created JetStream consumer",
            consumer=name,
            durable=name,
            stream=stream,
            start_sequence=config.opt_start_seq or 1,
        )
    group, timeout = priority
    have = info.config
    return Binding(
        stream=stream,
        durable=name,
        subject=settings.audit_topic,
        stream_created=stream_info.created,
        # (not every nats-py release knows these settings)
        max_request_batch=getattr(have, "max_request_batch", None) or 0,
        max_request_expires=getattr(have, "max_request_expires", None) or 0.0,
        max_request_max_bytes=getattr(have, "max_request_max_bytes", None) or 0,
        server_max_deliver=have.max_deliver or -1,
        priority_group=group,
        priority_timeout=timeout,
        pinned_at_start=_pinned_id(raw),
    )
