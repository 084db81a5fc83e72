"""``events-audit replay``: the lines of a window of the stream, written again.

For a gap that ``verify`` found (a log file lost with a disk, the time before
the service was deployed) the events still in the stream are read through an
ordered ephemeral consumer (``stream_window``) and their lines written with
the configured layout to ``--log-output``, fsynced.  The lines are the
service's own, made by the same formatter; ``consumer``, ``reply``,
``delivered``, ``pending`` and ``time`` are those of the replay.  The durable
consumer is not touched.  SIGINT stops after the batch in hand is written and
says where to resume.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, Settings, parse_duration
from .formatting import format_batch
from .sink import Sink, SinkError

# One write (and fsync) per this many messages or bytes, or this often.
BATCH_MESSAGES = 500
BATCH_BYTES = 4 << 20
BATCH_SECONDS = 0.2

EXIT_DONE, EXIT_NOT_ALL, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


@dataclass
class Window:
    """What to replay of one stream: sequence ranges, or a time window."""

    stream: str
    ranges: list[tuple[int, int]] = field(default_factory=list)  # (first, last); last 0: the end
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None

    def wanted(self) -> int:
        return sum(b - a + 1 for a, b in self.ranges if b)


def parse_time(text: str, flag: str) -> datetime.datetime:
    """RFC 3339 (2026-12-01T10:00:00Z), or a Go duration meaning that long ago."""
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        try:
            ago = parse_duration(text)
        except ValueError:
            raise ConfigError(
                f"{flag}: {text!r} is neither an RFC 3339 time (2026-12-01T10:00:00Z) nor a "
                "duration ago (2h)"
            ) from None
        return datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=ago)
    if moment.tzinfo is None:
        moment = moment.astimezone()  # a local time, as a user means it
    return moment


def windows_from_report(path: str) -> list[Window]:
    """The gaps of a ``verify --format json`` report that may still be in the
    stream (all of them when the report was made without NATS)."""
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
        streams = report["streams"]
        windows = []
        for name, stream in streams.items():
            ranges = [
                (int(g["first"]), int(g["last"]))
                for g in stream["gaps"]
                if g.get("in_stream") in (None, "replayable", "not_delivered")
            ]
            if ranges:
                windows.append(Window(name, ranges))
    except OSError as exc:
        raise ConfigError(f"--gaps-from: cannot read {path!r}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(
            f"--gaps-from: {path!r} is not a report of events-audit verify --format json"
        ) from None
    return windows


class Replay:
    def __init__(self, settings: Settings, sink: Sink, layout: int, progress: Any) -> None:
        self.settings = settings
        self.sink = sink
        self.layout = layout
        self.progress = progress
        self.stop = asyncio.Event()
        self.written = 0
        self.last_written: dict[str, int] = {}
        self.missing: dict[str, int] = {}  # sequences asked for that the stream lacks

    async def run(self, js: Any, windows: list[Window]) -> None:
        from .stream_window import read_window, stream_state

        for window in windows:
            state = await stream_state(js, window.stream)
            if state is None:
                raise ConfigError(f"there is no stream {window.stream!r}")
            ranges = window.ranges or [(0, 0)]
            for first, last in ranges:
                if self.stop.is_set():
                    return
                end = last or state["last_seq"]
                if not window.since and (end < state["first_seq"] or first > state["last_seq"]):
                    self._not_found(window.stream, first, end, 0)
                    continue
                found = await self._copy(
                    read_window(
                        js,
                        window.stream,
                        self.settings.audit_topic,
                        first_seq=first,
                        last_seq=end,
                        start_time=window.since,
                        end_time=window.until,
                    ),
                    window.stream,
                )
                if last and not self.stop.is_set():
                    self._not_found(window.stream, first, last, found)

    def _not_found(self, stream: str, first: int, last: int, found: int) -> None:
        if last >= first:
            self.missing[stream] = self.missing.get(stream, 0) + (last - first + 1 - found)

    async def _copy(self, messages: Any, stream: str) -> int:
        subjects: list[str] = []
        replies: list[str] = []
        payloads: list[bytes] = []
        size = 0
        started = time.monotonic()
        found = 0
        async for msg in messages:
            subjects.append(msg.subject)
            replies.append(msg.reply)
            payloads.append(msg.data)
            size += len(msg.data)
            found += 1
            self.last_written[stream] = msg.metadata.sequence.stream
            if (
                len(payloads) >= BATCH_MESSAGES
                or size >= BATCH_BYTES
                or time.monotonic() - started >= BATCH_SECONDS
            ):
                await self._write(subjects, replies, payloads)
                subjects, replies, payloads, size = [], [], [], 0
                started = time.monotonic()
            if self.stop.is_set():
                break
        await self._write(subjects, replies, payloads)
        return found

    async def _write(self, subjects: list[str], replies: list[str], payloads: list[bytes]) -> None:
        if not payloads:
            return
        lines = format_batch(subjects, replies, payloads, time.time_ns(), self.layout)
        # a file is fsynced in the write; in a thread, so SIGINT is heard
        await asyncio.get_running_loop().run_in_executor(None, self.sink.write, lines)
        self.written += len(payloads)
        if self.progress is not None:
            self.progress.update(len(payloads))


def main(argv: list[str]) -> int:
    from .cli import REPLAY_SETTINGS, tool_parser, tool_settings

    parser = tool_parser(
        "replay",
        "Write the lines of a window of the stream again (the service's own lines, fsynced), "
        "through an ordered ephemeral consumer: the durable consumer and a running service are "
        "not touched. Exit 0: done; 1: some asked-for events are no longer in the stream; "
        "2: bad input; 130: stopped by SIGINT.",
        REPLAY_SETTINGS,
    )
    parser.add_argument("--from-seq", type=int, metavar="N", help="first stream sequence")
    parser.add_argument("--to-seq", type=int, metavar="N", help="last stream sequence")
    parser.add_argument("--since", metavar="TIME", help="RFC 3339 time, or a duration ago (2h)")
    parser.add_argument("--until", metavar="TIME", help="RFC 3339 time, or a duration ago")
    parser.add_argument(
        "--gaps-from",
        metavar="REPORT",
        help="the gaps of an `events-audit verify --format json` report",
    )
    args = parser.parse_args(argv)
    settings = tool_settings(args)
    if not settings.audit_nats_addr.strip():
        raise ConfigError("replay needs --audit-nats-addr (env AUDIT_LISTNER_AUDIT_NATS_ADDR)")
    by_seq = args.from_seq is not None or args.to_seq is not None
    by_time = args.since is not None or args.until is not None
    if sum((by_seq, by_time, args.gaps_from is not None)) != 1:
        raise ConfigError(
            "give one window: --from-seq/--to-seq, --since/--until or --gaps-from REPORT"
        )
    if by_seq:
        first, last = args.from_seq or 1, args.to_seq or 0
        if first < 1 or last < 0 or (last and last < first):
            raise ConfigError(f"--from-seq {first} / --to-seq {last}: not a window of sequences")
        windows = [Window(settings.audit_stream_name, [(first, last)])]
    elif by_time:
        since = parse_time(args.since, "--since") if args.since else None
        until = parse_time(args.until, "--until") if args.until else None
        if since and until and until < since:
            raise ConfigError("--until is before --since")
        windows = [
            Window(
                settings.audit_stream_name,
                since=since or datetime.datetime.fromtimestamp(0, datetime.UTC),
                until=until,
            )
        ]
    else:
        windows = windows_from_report(args.gaps_from)
        if not windows:
            print("events-audit replay: the report names no gap to replay", file=sys.stderr)
            return EXIT_DONE
    try:
        sink = Sink.from_settings(settings)
    except SinkError as exc:
        raise ConfigError(str(exc)) from None
    if sink.unfinished_cut:
        print(
            f"events-audit replay: {sink.target} ended inside an unfinished line;"
            f" cut its {sink.unfinished_cut} bytes",
            file=sys.stderr,
        )
    try:
        return asyncio.run(_replay(settings, sink, windows))
    finally:
        sink.close()


async def _replay(settings: Settings, sink: Sink, windows: list[Window]) -> int:
    from .cli import layout_for
    from .stream_window import WindowError, connect

    progress = None
    if sys.stderr.isatty() and sink.target != "stderr":
        from tqdm import tqdm

        total = sum(w.wanted() for w in windows) or None
        progress = tqdm(total=total, unit="ev", desc="replay", file=sys.stderr, leave=False)
    replay = Replay(settings, sink, layout_for(settings, sink), progress)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, replay.stop.set)
    try:
        nc = await connect(settings)
        try:
            await replay.run(nc.jetstream(), windows)
        finally:
            await nc.close()
    except (WindowError, SinkError) as exc:
        print(f"events-audit replay: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        if progress is not None:
            progress.close()
    where = settings.log_output
    print(
        f"events-audit replay: {replay.written:,} event line(s) written to {where}", file=sys.stderr
    )
    if replay.stop.is_set():
        for stream, sequence in replay.last_written.items():
            print(
                f"events-audit replay: stopped by SIGINT after sequence {sequence} of {stream}; "
                f"resume with --from-seq {sequence + 1}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    if replay.missing and any(replay.missing.values()):
        for stream, count in replay.missing.items():
            if count:
                print(
                    f"events-audit replay: {count:,} asked-for sequence(s) of {stream} are not in "
                    "the stream on the service's subject (removed, or another subject)",
                    file=sys.stderr,
                )
        return EXIT_NOT_ALL
    return EXIT_DONE
