"""Read a nats-server's monitoring endpoint (make nats-status, -streams, -consumers, -monitor).

    python packaging/nats_monitor.py status|streams|consumers|monitor [--url URL]

The URL is --url, else $NATS_MONITOR_URL, else http://127.0.0.1:$NATS_MONITOR_PORT
(8222: the port `make run` gives its embedded server, and docker-compose.yml
publishes).  status prints /varz, streams /jsz?streams=1, consumers
/jsz?consumers=1 (as JSON); monitor prints one summary line every
--interval seconds ($NATS_MONITOR_INTERVAL, 2) until Ctrl-C, or --count
times.  Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def default_url() -> str:
    url = os.environ.get("NATS_MONITOR_URL")
    if url:
        return url.rstrip("/")
    return f"http://127.0.0.1:{os.environ.get('NATS_MONITOR_PORT') or '8222'}"


def get(base: str, path: str) -> dict:
    try:
        with urllib.request.urlopen(base + path, timeout=5) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SystemExit(
            f"nats-monitor: no NATS monitoring endpoint at {base} ({reason}).\n"
            "  `make run` starts nats-server with monitoring on 127.0.0.1:8222 "
            "(NATS_MONITOR_PORT); set NATS_MONITOR_URL for another server."
        ) from None


def jsz_accounts(jsz: dict) -> list[dict]:
    return [
        detail
        for account in jsz.get("account_details") or []
        for detail in account.get("stream_detail") or []
    ]


def summary(base: str) -> str:
    varz = get(base, "/varz")
    jsz = get(base, "/jsz?consumers=1")
    streams = jsz_accounts(jsz)
    parts = [
        time.strftime("%H:%M:%S"),
        f"conns={varz.get('connections', 0)}",
        f"in={varz.get('in_msgs', 0)}",
        f"out={varz.get('out_msgs', 0)}",
    ]
    for stream in streams:
        state = stream.get("state", {})
        parts.append(
            f"stream {stream['name']}: msgs={state.get('messages', 0)} "
            f"last_seq={state.get('last_seq', 0)}"
        )
        for consumer in stream.get("consumer_detail") or []:
            parts.append(
                f"consumer {consumer['name']}: pending={consumer.get('num_pending', 0)} "
                f"ack_pending={consumer.get('num_ack_pending', 0)} "
                f"redelivered={consumer.get('num_redelivered', 0)}"
            )
    if not streams:
        parts.append("no streams")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["status", "streams", "consumers", "monitor"])
    parser.add_argument("--url", default=default_url())
    parser.add_argument(
        "--interval", type=float, default=float(os.environ.get("NATS_MONITOR_INTERVAL") or 2)
    )
    parser.add_argument("--count", type=int, default=int(os.environ.get("NATS_MONITOR_COUNT") or 0))
    args = parser.parse_args(argv)
    base = args.url.rstrip("/")
    if args.what != "monitor":
        path = {"status": "/varz", "streams": "/jsz?streams=1", "consumers": "/jsz?consumers=1"}[
            args.what
        ]
        print(f"# {base}{path}", file=sys.stderr)
        print(json.dumps(get(base, path), indent=2))
        return 0
    print(f"# {base} every {args.interval:g}s (Ctrl-C stops)", file=sys.stderr)
    done = 0
    try:
        while True:
            print(summary(base), flush=True)
            done += 1
            if args.count and done >= args.count:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
