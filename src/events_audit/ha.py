"""--audit-ha=pinned: one active instance, the others on hot standby.

nats-server >= 2.11 gives a pull consumer priority groups (ADR-42).  With the
``pinned_client`` policy it delivers to one client only: the first pull
request that gets a message is pinned, and every message it gets carries the
header ``Nats-Pin-Id``.  That client then sends the id with each pull; a pull
with the id resets the pin's timer (``priority_timeout``), so a client that
stops pulling (killed, frozen) loses the pin after it.  Pulls without an id
wait as standby and get the pin next; a pull with an id that is no longer the
pin is answered with status 423.

This module holds what the service adds for that, outside the data path: the
consumer's priority fields and the check of an existing consumer, the role
(``Role``: what to log and count when it changes), the server's PINNED
advisories, and the unpin at shutdown.  The fast engine puts the
group and the pin id into its pull requests and tells the role what it sees.
nats-py (2.16) knows none of this, so the requests here are raw JetStream API
requests.
"""

from __future__ import annotations

import asyncio
import json

from nats.aio.client import Client
from nats.aio.msg import Msg

from .config import Settings, format_duration
from .logs import Logger
from .metrics import Metrics

PINNED_CLIENT = "pinned_client"
FIRST_SERVER = (2, 11, 0)  # the first nats-server with priority groups
ACTIVE = "Became the active instance (pinned)"
STANDBY = "Standing by (another instance is pinned)"
PINNED_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.PINNED.{stream}.{consumer}"
# A PINNED advisory and the first message of the pin it names travel apart:
# whether the pin is this instance's is judged this much later.
ADVISORY_SETTLE = 1.0
UNPIN_TIMEOUT = 2.0


class ConsumerRefused(Exception):
    """The consumer exists with priority settings this configuration cannot use
    (exit 2: the operator has to change the one or the other)."""


def consumer_fields(settings: Settings) -> dict:
    """The priority fields of a consumer the service creates (raw API names;
    priority_timeout in nanoseconds, as nats-server reads a Go duration)."""
    if settings.audit_ha != "pinned":
        return {}
    return {
        "priority_groups": [settings.audit_ha_group],
        "priority_policy": PINNED_CLIENT,
        "priority_timeout": int(settings.audit_ha_timeout * 1e9),
    }


def check_consumer(
    config: dict, settings: Settings, stream: str, name: str, log: Logger
) -> tuple[str, float]:
    """(priority group, priority timeout in s) the service pulls with, ("", 0)
    without; ConsumerRefused when the consumer and --audit-ha do not fit.
    The server lets an update switch the policy, but that would change the
    rules under instances already running, so the service never does it."""
    policy = config.get("priority_policy") or "none"
    groups = list(config.get("priority_groups") or [])
    delete = f"nats consumer rm {stream} {name}"
    if settings.audit_ha != "pinned":
        if policy == "none":
            return "", 0.0
        raise ConsumerRefused(
            f"consumer {name!r} of stream {stream!r} has priority groups {groups} "
            f"(priority_policy {policy}); start with --audit-ha=pinned "
            f"--audit-ha-group={groups[0] if groups else 'GROUP'} if it is a pinned one, "
            "or use another --audit-durable-name"
        )
    if policy != PINNED_CLIENT:
        raise ConsumerRefused(
            f"--audit-ha=pinned: consumer {name!r} of stream {stream!r} has "
            f"priority_policy {policy}, not {PINNED_CLIENT}, and a consumer's policy cannot "
            f"be switched; either delete it ({delete}; the service then creates it pinned, "
            "and the new consumer starts again at the stream's first event) or give "
            "--audit-durable-name a new name"
        )
    if settings.audit_ha_group not in groups:
        raise ConsumerRefused(
            f"--audit-ha-group={settings.audit_ha_group}: consumer {name!r} of stream "
            f"{stream!r} has the priority groups {groups}; use --audit-ha-group={groups[0]}"
            if groups
            else f"consumer {name!r} of stream {stream!r} has no priority group"
        )
    timeout = (config.get("priority_timeout") or 0) / 1e9 or 120.0  # the server's default
    if abs(timeout - settings.audit_ha_timeout) > 1e-3 and settings.is_set("audit-ha-timeout"):
        log.warning(
            "The consumer's priority_timeout differs from --audit-ha-timeout; the "
            "consumer's own is used (change it with nats consumer edit)",
            stream=stream,
            consumer=name,
            priority_timeout=format_duration(timeout),
            audit_ha_timeout=format_duration(settings.audit_ha_timeout),
        )
    return settings.audit_ha_group, timeout


def warn_if_old_server(nc: Client, log: Logger) -> None:
    version = getattr(nc, "connected_server_version", None)
    try:
        have = (version.major, version.minor, version.patch)
    except (AttributeError, TypeError, ValueError):
        return
    if have < FIRST_SERVER:
        log.warning(
            "--audit-ha=pinned needs nats-server 2.11 or later (priority groups); "
            "this one ignores them",
            server_version=".".join(map(str, have)),
        )


class Role:
    """Active (this instance holds the pin) or standby, as the pulls show it.

    The fast engine reports the pin ids of the messages it gets (``pinned``)
    and the 423s of its pulls (``lost``); the advisories tell about the pins
    of the others.  Each change of role is one log line and shows in the
    metrics (events_audit_ha_active, events_audit_ha_failovers_total).
    """

    def __init__(
        self,
        nc: Client,
        stream: str,
        consumer: str,
        group: str,
        log: Logger,
        metrics: Metrics,
        api_prefix: str = "$JS.API",
    ) -> None:
        self.nc = nc
        self.stream, self.consumer, self.group = stream, consumer, group
        self.log = log
        self.metrics = metrics
        self.api_prefix = api_prefix
        self.pin_id = ""  # this instance's pin, while it is the active one
        self.other_pin = ""  # the pin of another instance, as last heard of
        self.dropped = ""  # our last pin: late messages still carry it
        self.advised = ""  # the pin the last PINNED advisory named
        self.metrics.role = "standby"
        self._settling: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        return bool(self.pin_id)

    def _fields(self, pin_id: str) -> dict:
        return {
            "stream": self.stream,
            "consumer": self.consumer,
            "group": self.group,
            "pin_id": pin_id,
        }

    def pinned(self, pin_id: str) -> None:
        """A message for this instance carried ``pin_id``: it is the active one."""
        if pin_id == self.pin_id or pin_id == self.dropped:
            return
        self.pin_id, self.other_pin = pin_id, ""
        if self.metrics.role != "active":
            self.metrics.role = "active"
            self.metrics.ha_failovers += 1
        self.log.info(ACTIVE, **self._fields(pin_id))

    def lost(self, why: str) -> None:
        """A pull with our pin id was refused (423): another instance has the
        pin, or the server forgot it (a leader change); stand by."""
        if not self.pin_id:
            return
        self.dropped, self.pin_id = self.pin_id, ""
        self.metrics.role = "standby"
        self.log.warning("Lost the pin, standing by", reason=why, **self._fields(self.dropped))
        if self.advised and self.advised != self.dropped:
            self._standing_by(self.advised)

    def other_pinned(self, pin_id: str) -> None:
        """The server pinned ``pin_id`` and no message of ours carried it.
        While this instance gets messages with its own pin it stays active
        (an advisory can come late): a 423 is what takes the pin away."""
        if not pin_id or pin_id == self.dropped:
            return
        self.advised = pin_id
        if not self.pin_id:
            self._standing_by(pin_id)

    def _standing_by(self, pin_id: str) -> None:
        if pin_id == self.other_pin:
            return
        self.other_pin = pin_id
        self.metrics.role = "standby"
        self.log.info(STANDBY, **self._fields(pin_id))

    # -- the server's word ------------------------------------------------------

    async def watch(self) -> None:
        """Follow the PINNED advisories of the consumer: who holds the pin.
        (UNPINNED names no pin: one about the previous pin can come after
        this instance's first message under its new one.)"""
        subject = PINNED_ADVISORY.format(stream=self.stream, consumer=self.consumer)
        await self.nc.subscribe(subject, cb=self._on_pinned)

    async def _on_pinned(self, msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
        except ValueError:
            return
        if not isinstance(advisory, dict) or advisory.get("group") != self.group:
            return
        pin_id = str(advisory.get("pinned_id") or "")
        if self._settling is not None:
            self._settling.cancel()
        # ours if a message with it comes meanwhile; else another's
        self._settling = asyncio.get_running_loop().call_later(
            ADVISORY_SETTLE, self.other_pinned, pin_id
        )

    async def release(self) -> bool:
        """Shutdown of the active instance: ask the server to unpin now, so a
        standby takes over at once instead of after priority_timeout.  True
        when the server did."""
        if not self.pin_id:
            return False
        subject = f"{self.api_prefix}.CONSUMER.UNPIN.{self.stream}.{self.consumer}"
        try:
            reply = await self.nc.request(
                subject, json.dumps({"group": self.group}).encode(), timeout=UNPIN_TIMEOUT
            )
            answer = json.loads(reply.data)
        except Exception as exc:  # a standby takes over after priority_timeout then
            self.log.warning(
                "Could not unpin at shutdown; a standby takes over after the priority timeout",
                error=str(exc) or type(exc).__name__,
                **self._fields(self.pin_id),
            )
            return False
        if isinstance(answer, dict) and answer.get("error"):
            self.log.warning(
                "The server refused the unpin; a standby takes over after the priority timeout",
                error=answer["error"].get("description", ""),
                **self._fields(self.pin_id),
            )
            return False
        self.log.info("Unpinned for the shutdown", **self._fields(self.pin_id))
        self.dropped, self.pin_id = self.pin_id, ""
        self.metrics.role = "standby"
        return True
