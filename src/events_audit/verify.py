"""``events-audit verify``: is every event of the stream in these log files?

Every event line names its stream and stream sequence (the fields nats.go's
``Msg.Metadata()`` gives the original handler).  The files are read in any
order (rotated, gzipped, written by several instances on one durable), the
sequences seen are kept per stream in a bitmap (one bit per sequence, in
chunks, so memory follows the range of sequences and the gaps, not a set of
every event), and the report gives per stream the first and last sequence,
the events, the gaps as ranges, duplicates, and what the service's own error
lines say about missing sequences.  With a NATS address it also reads each
stream's state and sorts each gap into "still in the stream: replayable" or
"no longer in the stream".
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .advisories import GIVEN_UP
from .delivery import TERMINATED
from .records import RecordError, lines_of, parse_line
from .upstream import REMOVED, WENT_BACK

# Chunks of the per-stream bitmap: 65,536 sequences, 8 KiB each.
CHUNK_BITS = 16
CHUNK_SIZE = 1 << CHUNK_BITS
_FULL_CHUNK = b"\xff" * (CHUNK_SIZE // 8)
# Examples kept of each finding (the counts are exact).
EXAMPLES = 10

EXIT_COMPLETE, EXIT_MISSING, EXIT_BAD_INPUT = 0, 1, 2

# What the service's own error lines say about sequences it did not log.
NAMED_KINDS = {
    TERMINATED: "terminated",
    GIVEN_UP: "given_up",
    REMOVED: "removed_upstream",
}
NAMED_TEXT = {
    "terminated": "TERMed by the service (its line could not be written)",
    "given_up": "given up by the server (max_deliver)",
    "removed_upstream": "removed from the stream before it was logged",
}


class SequenceSet:
    """Sequences seen, as a bitmap in 64 Ki-sequence chunks (allocated only
    where sequences are); says whether a sequence was seen before."""

    def __init__(self) -> None:
        self.chunks: dict[int, bytearray] = {}
        self.count = 0
        self.first = 0
        self.last = 0

    def add(self, sequence: int) -> bool:
        """Mark ``sequence``; False when it was marked already (a duplicate)."""
        index, bit = sequence >> CHUNK_BITS, sequence & (CHUNK_SIZE - 1)
        chunk = self.chunks.get(index)
        if chunk is None:
            chunk = self.chunks[index] = bytearray(CHUNK_SIZE // 8)
        mask = 1 << (bit & 7)
        if chunk[bit >> 3] & mask:
            return False
        chunk[bit >> 3] |= mask
        if not self.count or sequence < self.first:
            self.first = sequence
        if sequence > self.last:
            self.last = sequence
        self.count += 1
        return True

    def __contains__(self, sequence: int) -> bool:
        chunk = self.chunks.get(sequence >> CHUNK_BITS)
        bit = sequence & (CHUNK_SIZE - 1)
        return chunk is not None and bool(chunk[bit >> 3] & (1 << (bit & 7)))

    def missing(self, first: int, last: int) -> Iterator[tuple[int, int]]:
        """The ranges (first, last) of sequences in [first, last] not seen."""
        start = -1  # of the open gap
        sequence = first
        while sequence <= last:
            index = sequence >> CHUNK_BITS
            chunk = self.chunks.get(index)
            chunk_end = min(last, ((index + 1) << CHUNK_BITS) - 1)
            if chunk is None or (start < 0 and chunk == _FULL_CHUNK):
                if chunk is None and start < 0:
                    start = sequence
                if chunk is not None and start >= 0:
                    yield start, sequence - 1
                    start = -1
                sequence = chunk_end + 1
                continue
            while sequence <= chunk_end:
                bit = sequence & (CHUNK_SIZE - 1)
                byte = chunk[bit >> 3]
                if bit & 7 == 0 and sequence + 7 <= chunk_end and byte in (0, 0xFF):
                    # eight at a time where a byte is all seen or all missing
                    if byte == 0xFF and start >= 0:
                        yield start, sequence - 1
                        start = -1
                    elif byte == 0 and start < 0:
                        start = sequence
                    sequence += 8
                    continue
                if byte & (1 << (bit & 7)):
                    if start >= 0:
                        yield start, sequence - 1
                        start = -1
                elif start < 0:
                    start = sequence
                sequence += 1
        if start >= 0:
            yield start, last


@dataclass
class Ranges:
    """Sequence ranges named by error lines (few: kept as a list)."""

    spans: list[tuple[int, int, str]] = field(default_factory=list)

    def add(self, first: int, last: int, kind: str) -> None:
        self.spans.append((first, last, kind))

    def split(self, first: int, last: int) -> Iterator[tuple[int, int, str | None]]:
        """[first, last] cut into parts, each with the kind that names it or None."""
        cuts = sorted(
            (max(a, first), min(b, last), kind)
            for a, b, kind in self.spans
            if a <= last and b >= first
        )
        position = first
        for a, b, kind in cuts:
            if b < position:
                continue
            a = max(a, position)
            if a > position:
                yield position, a - 1, None
            yield a, b, kind
            position = b + 1
        if position <= last:
            yield position, last, None


@dataclass
class StreamRecord:
    name: str
    seen: SequenceSet = field(default_factory=SequenceSet)
    lines: int = 0
    duplicates: int = 0
    redelivered_duplicates: int = 0  # of those, lines with delivered > 1
    duplicate_examples: list[dict] = field(default_factory=list)
    named: Ranges = field(default_factory=Ranges)
    findings: list[dict] = field(default_factory=list)  # "went back" lines
    state: dict | None = None  # from NATS: first_seq, last_seq, ...


@dataclass
class Record:
    """What the files hold."""

    files: list[str] = field(default_factory=list)
    streams: dict[str, StreamRecord] = field(default_factory=dict)
    events: int = 0
    service_lines: int = 0
    foreign: int = 0
    foreign_examples: list[dict] = field(default_factory=list)
    unsequenced: int = 0  # event lines with no stream sequence (not JetStream)
    cut_short: list[dict] = field(default_factory=list)  # a last line with no newline

    def stream(self, name: str) -> StreamRecord:
        record = self.streams.get(name)
        if record is None:
            record = self.streams[name] = StreamRecord(name)
        return record

    def read(self, path: str, progress: Any = None) -> None:
        self.files.append(path)
        for number, _offset, line in lines_of(path, progress):
            if not line.endswith(b"\n"):
                self.cut_short.append({"file": path, "line": number})
            entry = parse_line(line)
            if entry is None:
                self.foreign += 1
                if len(self.foreign_examples) < EXAMPLES:
                    text = line[:120].decode("utf-8", "replace").rstrip("\n")
                    self.foreign_examples.append({"file": path, "line": number, "text": text})
                continue
            stream = entry.fields.get("stream")
            if entry.is_event:
                sequence = entry.number("sequence")
                if not isinstance(stream, str) or sequence is None:
                    self.unsequenced += 1
                    continue
                self.events += 1
                record = self.stream(stream)
                record.lines += 1
                if not record.seen.add(sequence):
                    record.duplicates += 1
                    delivered = entry.number("delivered") or 0
                    record.redelivered_duplicates += delivered > 1
                    if len(record.duplicate_examples) < EXAMPLES:
                        record.duplicate_examples.append(
                            {
                                "sequence": sequence,
                                "file": path,
                                "line": number,
                                "delivered": delivered,
                            }
                        )
                continue
            self.service_lines += 1
            if entry.level != "error" or not isinstance(stream, str):
                continue
            kind = NAMED_KINDS.get(entry.msg)
            if kind == "removed_upstream":
                first, last = entry.number("first_sequence"), entry.number("last_sequence")
                if first is not None and last is not None:
                    self.stream(stream).named.add(first, last, kind)
            elif kind is not None:
                sequence = entry.number("sequence")
                if sequence is not None:
                    self.stream(stream).named.add(sequence, sequence, kind)
            elif entry.msg.startswith(WENT_BACK):
                self.stream(stream).findings.append(
                    {"file": path, "line": number, "msg": entry.msg, **entry.fields}
                )


@dataclass
class Gap:
    first: int
    last: int
    named: str | None = None  # what an error line of the service says of it
    in_stream: str | None = None  # with NATS: "replayable", "gone", "other_subject"
    where: str = "between"  # "head"/"tail": before the first/after the last logged one

    @property
    def count(self) -> int:
        return self.last - self.first + 1

    def as_dict(self) -> dict:
        return {
            "first": self.first,
            "last": self.last,
            "count": self.count,
            "named": self.named,
            "in_stream": self.in_stream,
            "where": self.where,
        }


def gaps_of(record: StreamRecord) -> list[Gap]:
    """The missing ranges of a stream, each cut by what the service's error
    lines say of it: between the first and the last sequence logged or named
    by an error line, and (with the stream's state) from the stream's first
    sequence up to that and from there to the stream's last one."""
    seen, state = record.seen, record.state
    bounds = [(a, b) for a, b, _ in record.named.spans]
    if seen.count:
        bounds.append((seen.first, seen.last))
    gaps: list[Gap] = []
    if bounds:
        low, high = min(a for a, _ in bounds), max(b for _, b in bounds)
        if state and state["messages"] and state["first_seq"] < low:
            gaps.append(Gap(state["first_seq"], low - 1, where="head"))
        gaps += [Gap(a, b) for a, b in seen.missing(low, high)]
        if state and state["last_seq"] > high:
            gaps.append(Gap(high + 1, state["last_seq"], where="tail"))
    elif state and state["messages"]:
        gaps.append(Gap(state["first_seq"], state["last_seq"], where="tail"))
    return [
        Gap(a, b, kind, where=gap.where)
        for gap in gaps
        for a, b, kind in record.named.split(gap.first, gap.last)
    ]


def stream_report(record: StreamRecord, gaps: list[Gap]) -> dict:
    missing = sum(g.count for g in gaps if g.in_stream != "other_subject")
    report = {
        "first_sequence": record.seen.first if record.seen.count else None,
        "last_sequence": record.seen.last if record.seen.count else None,
        "events": record.seen.count,
        "lines": record.lines,
        "missing": missing,
        "missing_silently": sum(
            g.count for g in gaps if g.named is None and g.in_stream != "other_subject"
        ),
        "gaps": [g.as_dict() for g in gaps],
        "duplicates": record.duplicates,
        "duplicates_redelivered": record.redelivered_duplicates,
        "duplicate_examples": record.duplicate_examples,
        "named_by_service": [
            {"first": a, "last": b, "kind": kind} for a, b, kind in record.named.spans
        ],
        "went_back": record.findings,
    }
    if record.state is not None:
        report["stream_state"] = record.state
    return report


def build_report(record: Record, gaps: dict[str, list[Gap]]) -> dict:
    streams = {name: stream_report(record.streams[name], gaps[name]) for name in sorted(gaps)}
    complete = (
        bool(streams)
        and all(s["missing"] == 0 and not s["went_back"] for s in streams.values())
        and not record.cut_short
    )
    return {
        "complete": complete,
        "files": record.files,
        "events": record.events,
        "streams": streams,
        "service_lines": record.service_lines,
        "foreign_lines": record.foreign,
        "foreign_examples": record.foreign_examples,
        "event_lines_without_sequence": record.unsequenced,
        "cut_short": record.cut_short,
    }


def _ranges_text(gaps: Iterable[dict]) -> list[str]:
    out = []
    for gap in gaps:
        span = f"{gap['first']}" if gap["first"] == gap["last"] else f"{gap['first']}-{gap['last']}"
        notes = []
        if gap["where"] != "between":
            notes.append(
                "before the first logged event"
                if gap["where"] == "head"
                else "after the last logged event"
            )
        notes.append(
            NAMED_TEXT[gap["named"]] if gap["named"] else "no line of the service names it"
        )
        if gap["in_stream"] == "replayable":
            notes.append("still in the stream: replayable")
        elif gap["in_stream"] == "gone":
            notes.append("no longer in the stream")
        elif gap["in_stream"] == "other_subject":
            notes.append("another subject (not the service's)")
        elif gap["in_stream"] == "not_delivered":
            notes.append("not delivered on the service's subject: deleted or another subject")
        out.append(f"    {span:>23}  {gap['count']:>9,}  {'; '.join(notes)}")
    return out


def human_summary(report: dict, shown: int = 20, digest_text: str = "") -> str:
    """The report for a person; ``digest_text`` (the digest's check) goes
    before the verdict."""
    lines = [f"Read {len(report['files'])} file(s): {report['events']:,} event lines"]
    if not report["streams"]:
        lines.append("No event line with a stream sequence found.")
    for name, s in report["streams"].items():
        head = f"Stream {name}: "
        if s["events"]:
            head += f"sequences {s['first_sequence']}-{s['last_sequence']}, {s['events']:,} events"
        else:
            head += "no events logged"
        if s.get("stream_state"):
            st = s["stream_state"]
            head += f" (the stream holds {st['first_seq']}-{st['last_seq']})"
        lines.append(head)
        gaps = [g for g in s["gaps"] if g["in_stream"] != "other_subject"]
        if gaps:
            lines.append(
                f"  MISSING {s['missing']:,} event(s) in {len(gaps):,} range(s)"
                f" ({s['missing_silently']:,} not named by any line of the service):"
            )
            lines += _ranges_text(gaps[:shown])
            if len(gaps) > shown:
                lines.append(f"    ... {len(gaps) - shown:,} more (--format json lists all)")
        else:
            lines.append("  no gaps")
        others = len(s["gaps"]) - len(gaps)
        if others:
            lines.append(
                f"  {others:,} range(s) of other subjects in the stream (not the service's)"
            )
        if s["duplicates"]:
            lines.append(
                f"  {s['duplicates']:,} duplicate line(s), {s['duplicates_redelivered']:,} of them"
                " redeliveries (delivered > 1)"
            )
        for finding in s["went_back"]:
            lines.append(
                f"  the service reported: {finding['msg']} ({finding['file']}:{finding['line']})"
            )
    if report["foreign_lines"]:
        first = report["foreign_examples"][0]
        lines.append(
            f"{report['foreign_lines']:,} line(s) not written by the service"
            f" (first: {first['file']}:{first['line']})"
        )
    if report["event_lines_without_sequence"]:
        lines.append(
            f"{report['event_lines_without_sequence']:,} event line(s) without a stream sequence"
        )
    for cut in report["cut_short"]:
        lines.append(f"{cut['file']}: line {cut['line']} is cut short (no newline)")
    if digest_text:
        lines.append(digest_text.rstrip("\n"))
    lines.append("COMPLETE: every event is logged" if report["complete"] else "INCOMPLETE")
    return "\n".join(lines) + "\n"


def progress_bar(paths: list[str], enabled: bool) -> Any:
    """A tqdm bar over the bytes of the files, on a terminal only."""
    if not enabled:
        return None
    from tqdm import tqdm

    total = 0
    for path in paths:
        try:
            total += os.path.getsize(path)
        except OSError:
            pass
    return tqdm(total=total, unit="B", unit_scale=True, desc="verify", file=sys.stderr, leave=False)


def read_files(paths: list[str], show_progress: bool) -> Record:
    record = Record()
    bar = progress_bar(paths, show_progress)
    try:
        for path in paths:
            record.read(path, bar)
    finally:
        if bar is not None:
            bar.close()
    return record


# -- the stream's side (with --audit-nats-addr) --------------------------------

# Gaps closer than this are read in one window (the logged events between
# them come too, headers only).
WINDOW_JOIN = 4096
# Sequences a filtered read did not deliver are looked up one by one up to
# this many (deleted, or another subject); beyond, they are "not_delivered".
LOOKUPS = 1000


async def read_stream_states(record: Record, js: Any) -> None:
    from .stream_window import stream_state

    for name, stream in record.streams.items():
        state = await stream_state(js, name)
        stream.state = (
            state
            if state is not None
            else {
                "first_seq": 0,
                "last_seq": 0,
                "messages": 0,
                "num_deleted": 0,
                "missing": True,
            }
        )


async def classify(stream: str, gaps: list[Gap], state: dict, js: Any, subject: str) -> list[Gap]:
    """Each gap cut into "replayable" (the service's filter delivers it from
    the stream now), "gone" (no longer in the stream) and "other_subject"
    (in the stream, but not on the service's subject: not a gap at all)."""
    from .stream_window import read_window

    if state.get("missing"):
        return [Gap(g.first, g.last, g.named, "gone", g.where) for g in gaps]
    delivered = SequenceSet()
    in_stream = [g for g in gaps if g.last >= state["first_seq"]]
    windows: list[list[int]] = []
    for gap in in_stream:
        first = max(gap.first, state["first_seq"])
        if windows and first - windows[-1][1] <= WINDOW_JOIN:
            windows[-1][1] = max(windows[-1][1], gap.last)
        else:
            windows.append([first, gap.last])
    for first, last in windows:
        async for msg in read_window(js, stream, subject, first, last, headers_only=True):
            delivered.add(msg.metadata.sequence.stream)
    budget = [LOOKUPS]
    out: list[Gap] = []
    for gap in gaps:
        position = gap.first
        for a, b in list(delivered.missing(gap.first, gap.last)) + [(gap.last + 1, gap.last)]:
            if a > position:  # delivered: still there
                out.append(Gap(position, a - 1, gap.named, "replayable", gap.where))
            if a > b:
                break
            for c, d, kind in await _absent(js, stream, a, b, state, budget):
                out.append(Gap(c, d, gap.named, kind, gap.where))
            position = b + 1
    return out


async def _absent(js: Any, stream: str, first: int, last: int, state: dict, budget: list) -> list:
    """[first, last] (not delivered by the filter) cut into runs of "gone"
    and "other_subject" (looked up one by one while ``budget[0]`` lasts)."""
    from nats.js.errors import NotFoundError

    runs: list[list] = []

    def put(sequence: int, kind: str) -> None:
        if runs and runs[-1][2] == kind and runs[-1][1] == sequence - 1:
            runs[-1][1] = sequence
        else:
            runs.append([sequence, sequence, kind])

    if first < state["first_seq"]:
        runs.append([first, min(last, state["first_seq"] - 1), "gone"])
        first = state["first_seq"]
    for sequence in range(first, last + 1):
        if budget[0] <= 0:
            runs.append([sequence, last, "not_delivered"])
            break
        budget[0] -= 1
        try:
            await js.get_msg(stream, seq=sequence)
        except NotFoundError:
            put(sequence, "gone")
        else:
            put(sequence, "other_subject")
    return runs


# -- the command ---------------------------------------------------------------


def main(argv: list[str]) -> int:
    import asyncio
    import json

    from .cli import CONNECTION_SETTINGS, tool_parser, tool_settings

    parser = tool_parser(
        "verify",
        "Report per stream whether every event is in the given log files (plain or .gz, any "
        "layout, any order, several instances). Exit 0: complete; 1: something is missing or "
        "altered; 2: bad input.",
        CONNECTION_SETTINGS,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="log files of the service")
    parser.add_argument("--format", choices=("human", "json"), default="human")
    parser.add_argument(
        "--digest",
        action="append",
        default=[],
        metavar="PATH",
        help="digest file(s) of the service (--audit-digest), rotated ones too: check the "
        "files against them",
    )
    parser.add_argument(
        "--public-key",
        metavar="FILE",
        help="Ed25519 public key (PEM) the checkpoints are checked with",
    )
    args = parser.parse_args(argv)
    settings = tool_settings(args)
    for path in args.files + args.digest + ([args.public_key] if args.public_key else []):
        if not os.path.isfile(path):
            print(f"events-audit verify: {path}: no such file", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        record = read_files(args.files, sys.stderr.isatty())
    except RecordError as exc:
        print(f"events-audit verify: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    gaps = {name: gaps_of(stream) for name, stream in record.streams.items()}
    if settings.audit_nats_addr.strip():
        try:
            gaps = asyncio.run(_with_stream(record, settings))
        except Exception as exc:  # the stream side could not be read: say so, no traceback
            print(f"events-audit verify: {exc or type(exc).__name__}", file=sys.stderr)
            return EXIT_BAD_INPUT
    report = build_report(record, gaps)
    if args.digest:
        from .digest import DigestError, check_digests

        try:
            report["digest"] = check_digests(args.digest, args.files, args.public_key)
        except DigestError as exc:
            print(f"events-audit verify: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        report["complete"] = report["complete"] and report["digest"]["intact"]
    if args.format == "json":
        sys.stdout.write(json.dumps(report, indent=1, default=str) + "\n")
    else:
        digest_text = ""
        if args.digest:
            from .digest import digest_summary

            digest_text = digest_summary(report["digest"])
        sys.stdout.write(human_summary(report, digest_text=digest_text))
    return EXIT_COMPLETE if report["complete"] else EXIT_MISSING


async def _with_stream(record: Record, settings: Any) -> dict[str, list[Gap]]:
    from .stream_window import connect

    nc = await connect(settings)
    try:
        js = nc.jetstream()
        await read_stream_states(record, js)
        return {
            name: await classify(
                name, gaps_of(stream), stream.state or {}, js, settings.audit_topic
            )
            for name, stream in record.streams.items()
        }
    finally:
        await nc.close()
