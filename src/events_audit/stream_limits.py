"""Which configured limits an existing stream may get now.

A stream's limits are a value for a new stream; an existing one gets only
the limits given explicitly (flag, env or YAML), and only those that remove
nothing the consumer has not logged yet.  A tighter limit applied at once
makes the server discard the oldest messages before anything was logged
(the original does that: 2,000,000 waiting events, --audit-stream-max-msgs
left at 1,000,000, the first million gone without a line).  Such a limit is
held back, with a warning, and applied once the backlog is logged.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import StreamInfo
from nats.js.errors import NotFoundError

from .config import Settings, format_duration

# (option, StreamConfig field, Settings attribute)
LIMITS = (
    ("audit-stream-max-age", "max_age", "audit_stream_max_age"),
    ("audit-stream-max-bytes", "max_bytes", "audit_stream_max_bytes"),
    ("audit-stream-max-msgs", "max_msgs", "audit_stream_max_msgs"),
    ("audit-stream-replicas", "num_replicas", "audit_stream_replicas"),
)


def current(info: StreamInfo, field: str) -> float | int:
    value = getattr(info.config, field)
    if field == "max_age":
        return value or 0
    if field == "num_replicas":
        return value or 1
    return -1 if value is None else value


def wanted_changes(settings: Settings, info: StreamInfo) -> dict[str, float | int]:
    """The explicitly configured limits that differ from the stream's."""
    changes = {}
    for option, field, attr in LIMITS:
        value = getattr(settings, attr)
        if settings.is_set(option) and current(info, field) != value:
            changes[field] = value
    return changes


@dataclass(frozen=True)
class Backlog:
    """The stream's messages the consumer has not logged yet."""

    messages: int
    first_sequence: int  # the lowest stream sequence not yet acked (0: none)


async def backlog(js: JetStreamContext, settings: Settings, info: StreamInfo) -> Backlog:
    try:
        consumer = await js.consumer_info(info.config.name, settings.audit_durable_name)
    except NotFoundError:  # a new consumer delivers the whole stream
        return Backlog(info.state.messages, info.state.first_seq if info.state.messages else 0)
    unlogged = (consumer.num_pending or 0) + (consumer.num_ack_pending or 0)
    floor = consumer.ack_floor.stream_seq if consumer.ack_floor else 0
    return Backlog(unlogged, max(floor + 1, info.state.first_seq) if unlogged else 0)


async def _oldest_unlogged(
    js: JetStreamContext, settings: Settings, info: StreamInfo, first: int
) -> datetime.datetime | None:
    try:
        msg = await js.get_msg(info.config.name, seq=first, subject=settings.audit_topic, next=True)
    except NotFoundError:
        return None
    return msg.time


async def held_back(
    js: JetStreamContext,
    settings: Settings,
    info: StreamInfo,
    changes: dict[str, float | int],
    pending: Backlog,
) -> dict[str, dict]:
    """The changes that would remove unlogged events, each with what it would
    remove (fields for the warning line)."""
    held: dict[str, dict] = {}
    if not pending.messages:
        return held
    state = info.state
    limit = changes.get("max_msgs")
    if limit is not None and limit > 0 and pending.messages > limit:
        held["max_msgs"] = {"would_remove_unlogged": pending.messages - limit}
    limit = changes.get("max_bytes")
    if limit is not None and limit > 0 and state.messages:
        unlogged_bytes = state.bytes * min(pending.messages, state.messages) // state.messages
        if unlogged_bytes > limit:
            held["max_bytes"] = {"unlogged_bytes_about": unlogged_bytes}
    limit = changes.get("max_age")
    if limit and pending.first_sequence:
        oldest = await _oldest_unlogged(js, settings, info, pending.first_sequence)
        if oldest is not None:
            age = (datetime.datetime.now(datetime.UTC) - oldest).total_seconds()
            if age > limit:
                held["max_age"] = {"oldest_unlogged_age": format_duration(round(age, 3))}
    return held


def shown(field: str, value: float | int) -> str | int | float:
    """A limit as the log line shows it."""
    if field != "num_replicas" and value <= 0:
        return "unlimited"
    return format_duration(value) if field == "max_age" else value
