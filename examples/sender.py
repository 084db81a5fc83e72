"""Publish sample events to JetStream, like the original's examples/sender.

python examples/sender.py --subject events.test --count 10          # structured
python examples/sender.py --subject events.test --count 3 --raw     # raw text
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

import nats
import nats.errors


def structured(i: int) -> bytes:
    return json.dumps(
        {
            "id": f"event-{i}",
            "type": "user.action",
            "source": "sender",
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "data": {"action": "login", "user_id": str(67890 + i)},
        },
        separators=(",", ":"),
    ).encode()


async def _quiet(exc: Exception) -> None:
    """nats-py prints a traceback per failed attempt unless told otherwise."""


async def send(url: str, subject: str, count: int, raw: bool) -> int:
    try:
        nc = await nats.connect(
            url,
            connect_timeout=3,
            allow_reconnect=False,
            max_reconnect_attempts=1,
            reconnect_time_wait=0.2,
            error_cb=_quiet,
        )
    except (nats.errors.NoServersError, OSError) as exc:
        print(f"sender: cannot connect to {url}: {exc}", file=sys.stderr)
        return 1
    js = nc.jetstream()
    try:
        for i in range(1, count + 1):
            payload = f"Simple text message {i}".encode() if raw else structured(i)
            ack = await js.publish(subject, payload)
            print(f"published {subject} seq={ack.seq} stream={ack.stream}")
    except nats.js.errors.NoStreamResponseError:
        print(
            f"sender: no JetStream stream captures {subject!r} (is events-audit running "
            "with a matching --audit-topic?)",
            file=sys.stderr,
        )
        return 1
    finally:
        await nc.close()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="nats://127.0.0.1:4222")
    parser.add_argument("--subject", default="events.test")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--raw", action="store_true", help="plain text instead of JSON events")
    args = parser.parse_args()
    return asyncio.run(send(args.url, args.subject, args.count, args.raw))


if __name__ == "__main__":
    sys.exit(main())
