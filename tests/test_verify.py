"""events-audit verify and replay: completeness of the record, gaps restored
(real nats-server processes; line parsing checked on both twins' output)."""

from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events_audit.logs import LAYOUT_COLOR, LAYOUT_JSON, LAYOUT_TEXT, Logger
from events_audit.records import parse_line
from events_audit.verify import (
    CHUNK_SIZE,
    GIVEN_UP,
    REMOVED,
    TERMINATED,
    SequenceSet,
    read_files,
)
from servers import Service, consumer_info, publish, run_async, wait_all_acked, wait_until
from test_digest import events, tool
from test_service import base_args

ROOT = Path(__file__).resolve().parent.parent
LAYOUTS = [LAYOUT_JSON, LAYOUT_TEXT, LAYOUT_COLOR]
# payloads that carry what a careless parser would take for the fields
TRICKY = [
    b'{"id":"x","data":{"sequence":"9","stream":"FAKE","reply":"$JS.ACK.FAKE.d.1.99.1.1.0"}}',
    b'raw sequence=77 stream=FAKE "quoted" \\" \x1b[36mstream\x1b[0m=FAKE',
    b"\xff\xfe invalid utf-8 sequence=5",
    b"",
]


def reply(sequence: int, delivered: int = 1, stream: str = "EVENTS") -> str:
    return f"$JS.ACK.{stream}.dur.{delivered}.{sequence}.{sequence}.1700000000000000000.0"


@pytest.mark.parametrize("layout", LAYOUTS, ids=["json", "text", "color"])
def test_event_lines_give_their_stream_and_sequence_in_every_layout(formatter, layout) -> None:
    replies = [reply(10 + i, 1 + i % 2) for i in range(len(TRICKY))]
    lines = formatter.format_batch(
        ["events.a"] * len(TRICKY), replies, TRICKY, 1_700_000_000_000_000_000, layout
    ).splitlines(keepends=True)
    entries = [parse_line(line) for line in lines]
    assert all(e is not None and e.is_event for e in entries), lines
    assert [(e.fields["stream"], e.number("sequence")) for e in entries] == [
        ("EVENTS", 10 + i) for i in range(len(TRICKY))
    ]
    assert [e.number("delivered") for e in entries] == [1 + i % 2 for i in range(len(TRICKY))]


def service_error(layout: int, msg: str, **fields) -> bytes:
    """An error line of the service, as its Logger writes it."""
    written: list[bytes] = []
    Logger(written.append, "info", layout).error(msg, **fields)
    return written[0]


@pytest.mark.parametrize("layout", LAYOUTS, ids=["json", "text", "color"])
def test_the_service_error_lines_are_read_in_every_layout(layout) -> None:
    line = service_error(
        layout,
        "Message terminated after its last delivery: its line could not be written",
        stream="EVENTS",
        sequence=42,
        delivered=5,
        payload_excerpt='sequence=1 "x"',
    )
    entry = parse_line(line)
    assert entry is not None and entry.level == "error" and not entry.is_event
    assert entry.fields["stream"] == "EVENTS" and entry.number("sequence") == 42


@pytest.mark.parametrize("line", [b"plain text\n", b"{not json\n", b"time=x level=nope msg=y\n"])
def test_other_lines_are_not_taken_for_the_service(line) -> None:
    assert parse_line(line) is None


@settings(max_examples=200, deadline=None)
@given(st.sets(st.integers(1, 3 * CHUNK_SIZE), max_size=300), st.integers(1, 100))
def test_the_bitmap_finds_exactly_the_missing_ranges(sequences, low) -> None:
    seen = SequenceSet()
    for sequence in sorted(sequences, key=lambda _: random.random()):
        assert seen.add(sequence)
    assert all(not seen.add(s) for s in sequences)  # each again: a duplicate
    high = 3 * CHUNK_SIZE + 5
    expected, start = [], None
    for s in range(low, high + 1):
        if s not in sequences and start is None:
            start = s
        if s in sequences and start is not None:
            expected.append((start, s - 1))
            start = None
    if start is not None:
        expected.append((start, high))
    assert list(seen.missing(low, high)) == expected


def test_the_bitmap_is_bounded_by_the_range_not_the_events() -> None:
    seen = SequenceSet()
    for s in range(1, 2_000_001):
        seen.add(s)
    assert sum(len(c) for c in seen.chunks.values()) <= 2_000_000 // 8 + CHUNK_SIZE // 8
    assert list(seen.missing(1, 2_000_000)) == []


# -- against a real server ------------------------------------------------------


def run_service(tmp_path: Path, url: str, engine: str, total: int, *extra: str, name="svc"):
    svc = Service(
        tmp_path, base_args(url, "--log-level=info", *extra, engine=engine), name=name
    ).start()
    wait_all_acked(url, total, timeout=60)
    assert svc.terminate() == 0
    return svc.log_path


def verify_json(*args: str) -> tuple[int, dict]:
    result = tool("verify", "--format=json", *args)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def test_files_of_two_instances_rotated_and_gzipped_are_complete(nats_server, tmp_path, engine):
    """Two instances share the durable (each file an interleaved subset), one
    file is rotated and compressed: together complete, each alone not."""
    url = nats_server.url
    publish(url, events(1, 2000))
    first = Service(tmp_path, base_args(url, "--log-level=info", engine=engine), name="a").start()
    wait_until(lambda: first.count("Received") > 0, 20, "the first instance logging")
    second = Service(
        tmp_path, base_args(url, "--log-level=info", "--log-format=json", engine=engine), name="b"
    ).start()
    os.rename(first.log_path, tmp_path / "a.log.1")
    first.proc.send_signal(signal.SIGHUP)
    publish(url, events(2001, 1000))
    wait_all_acked(url, 3000, timeout=60)
    assert first.terminate() == 0 and second.terminate() == 0
    with open(tmp_path / "a.log.1", "rb") as plain, gzip.open(tmp_path / "a.1.gz", "wb") as packed:
        packed.write(plain.read())
    files = [str(tmp_path / "a.1.gz"), str(first.log_path), str(second.log_path)]
    code, report = verify_json(*files)
    stream = report["streams"]["EVENTS"]
    assert code == 0 and report["complete"], stream["gaps"][:5]
    assert (stream["first_sequence"], stream["last_sequence"], stream["events"]) == (1, 3000, 3000)
    assert stream["lines"] == 3000 + stream["duplicates"]
    # one file alone, checked against the stream (which knows the head and tail)
    alone, report = verify_json(f"--audit-nats-addr={url}", "--audit-topic=events.>", files[1])
    logged = report["streams"]["EVENTS"]["events"]
    assert alone == 1 and report["streams"]["EVENTS"]["missing"] == 3000 - logged


def test_gaps_are_found_sorted_by_the_stream_and_replayed(nats_server, tmp_path, engine) -> None:
    url = nats_server.url
    publish(url, events(1, 1000))
    log = run_service(tmp_path, url, engine, 1000, "--log-format=json")
    lines = log.read_bytes().splitlines(keepends=True)
    # a lost stretch (200-299) and a single lost line (500)
    kept = [
        line
        for line in lines
        if not any(f'"sequence":{s},'.encode() in line for s in [*range(200, 300), 500])
    ]
    cut = tmp_path / "cut.log"
    cut.write_bytes(b"".join(kept))
    code, report = verify_json(str(cut))
    gaps = [(g["first"], g["last"]) for g in report["streams"]["EVENTS"]["gaps"]]
    assert code == 1 and gaps == [(200, 299), (500, 500)]
    assert report["streams"]["EVENTS"]["missing_silently"] == 101

    async def remove() -> None:  # some of the lost stretch leaves the stream
        nc = await nats.connect(url)
        js = nc.jetstream()
        for s in range(250, 260):
            await js.delete_msg("EVENTS", s)
        await nc.close()

    run_async(remove())
    connection = [f"--audit-nats-addr={url}", "--audit-topic=events.>"]
    code, report = verify_json(*connection, str(cut))
    gaps = [(g["first"], g["last"], g["in_stream"]) for g in report["streams"]["EVENTS"]["gaps"]]
    assert code == 1 and gaps == [
        (200, 249, "replayable"),
        (250, 259, "gone"),
        (260, 299, "replayable"),
        (500, 500, "replayable"),
    ]
    (tmp_path / "report.json").write_text(json.dumps(report))
    before = consumer_info(url)
    replayed = tmp_path / "replayed.log"
    result = tool(
        "replay",
        *connection,
        f"--gaps-from={tmp_path / 'report.json'}",
        f"--log-output={replayed}",
        "--log-format=json",
    )
    assert result.returncode == 0, result.stderr
    assert "91 event line(s) written" in result.stderr
    after = consumer_info(url)  # the durable consumer is not touched
    assert (after.delivered, after.ack_floor, after.num_pending) == (
        before.delivered,
        before.ack_floor,
        before.num_pending,
    )
    records = [json.loads(line) for line in replayed.read_text().splitlines()]
    originals = {r["sequence"]: r for r in map(json.loads, lines) if "sequence" in r}
    for rec in records:  # the same fields; the replay's consumer, reply and time
        original = originals[rec["sequence"]]
        same = {k: v for k, v in rec.items() if k not in ("consumer", "reply", "pending", "time")}
        assert same == {k: original[k] for k in same}
        assert rec["consumer"] != original["consumer"]
    code, report = verify_json(*connection, str(cut), str(replayed))
    gaps = [(g["first"], g["last"], g["in_stream"]) for g in report["streams"]["EVENTS"]["gaps"]]
    assert code == 1 and gaps == [(250, 259, "gone")]  # what is gone stays missing, named


def test_verify_sorts_out_other_subjects_in_the_tail(nats_server, tmp_path) -> None:
    """The stream holds a subject the service does not read and events after
    the last logged one: only the service's are missing."""
    url = nats_server.url
    publish(url, events(1, 10), subjects=("events.>", "other.>"))
    publish(url, [("other.x", b"not ours")] * 5)
    log = run_service(tmp_path, url, "fast", 10, "--log-format=json")
    publish(url, events(11, 5))
    code, report = verify_json(f"--audit-nats-addr={url}", "--audit-topic=events.>", str(log))
    gaps = [
        (g["first"], g["last"], g["in_stream"], g["where"])
        for g in report["streams"]["EVENTS"]["gaps"]
    ]
    assert code == 1 and gaps == [(11, 15, "other_subject", "tail"), (16, 20, "replayable", "tail")]
    assert report["streams"]["EVENTS"]["missing"] == 5


def test_replay_by_sequence_window_is_the_service_s_lines(nats_server, tmp_path) -> None:
    url = nats_server.url
    publish(url, events(1, 50))
    out = tmp_path / "r.log"
    result = tool(
        "replay",
        f"--audit-nats-addr={url}",
        "--audit-topic=events.>",
        "--from-seq=10",
        "--to-seq=19",
        f"--log-output={out}",
    )
    assert result.returncode == 0, result.stderr
    entries = [parse_line(line) for line in out.read_bytes().splitlines(keepends=True)]
    assert [e.number("sequence") for e in entries] == list(range(10, 20))
    assert all(e.is_event for e in entries) and out.read_text().startswith("time=")
    since = tool(
        "replay",
        f"--audit-nats-addr={url}",
        "--audit-topic=events.>",
        "--since=1h",
        "--until=2999-01-01T00:00:00Z",
        f"--log-output={tmp_path / 's.log'}",
    )
    assert since.returncode == 0 and "50 event line(s)" in since.stderr, since.stderr


def test_replay_stops_cleanly_on_sigint_and_resumes(nats_server, tmp_path) -> None:
    url = nats_server.url
    publish(url, [("events.a", b"x" * 20000)] * 3000)
    out = tmp_path / "r.log"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "events_audit",
            "replay",
            f"--audit-nats-addr={url}",
            "--audit-topic=events.>",
            "--from-seq=1",
            f"--log-output={out}",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    wait_until(lambda: out.exists() and out.stat().st_size > 0, 30, "the first lines")
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    resume = int(err.split("resume with --from-seq ")[1].split()[0])
    assert 1 < resume <= 3000
    written = [parse_line(line).number("sequence") for line in out.read_bytes().splitlines()]
    assert written == list(range(1, resume))  # whole lines, in order, up to the stop
    rest = tool(
        "replay",
        f"--audit-nats-addr={url}",
        "--audit-topic=events.>",
        f"--from-seq={resume}",
        f"--log-output={out}",
    )
    assert rest.returncode == 0, rest.stderr
    code, report = verify_json(str(out))
    assert code == 0 and report["streams"]["EVENTS"]["events"] == 3000


def test_the_service_s_own_error_lines_name_what_they_lost(tmp_path, formatter) -> None:
    lines = formatter.format_batch(
        ["events.a"] * 4,
        [reply(1), reply(2), reply(5), reply(12)],
        [b"a", b"b", b"c", b"d"],
        0,
        LAYOUT_TEXT,
    )
    named = [
        (TERMINATED, {"stream": "EVENTS", "sequence": 3, "delivered": 5, "payload_excerpt": "c"}),
        (GIVEN_UP, {"stream": "EVENTS", "consumer": "d", "sequence": 6, "delivered": 3}),
        (REMOVED, {"stream": "EVENTS", "first_sequence": 8, "last_sequence": 10, "events": 3}),
    ]
    written = [service_error(LAYOUT_TEXT, msg, **fields) for msg, fields in named]
    path = tmp_path / "a.log"
    path.write_bytes(lines + b"".join(written))
    code, report = verify_json(str(path))
    gaps = [(g["first"], g["last"], g["named"]) for g in report["streams"]["EVENTS"]["gaps"]]
    assert code == 1 and gaps == [
        (3, 3, "terminated"),
        (4, 4, None),
        (6, 6, "given_up"),
        (7, 7, None),
        (8, 10, "removed_upstream"),
        (11, 11, None),
    ]
    assert report["streams"]["EVENTS"]["missing_silently"] == 3
    assert report["service_lines"] == 3 and report["foreign_lines"] == 0


@pytest.mark.parametrize(
    "args, error",
    [
        (["verify", "/nonexistent.log"], "no such file"),
        (["verify"], "the following arguments are required: FILE"),
        (["verify", "--format=xml", "a"], "invalid choice"),
        (["replay", "--from-seq=1"], "replay needs --audit-nats-addr"),
        (
            ["replay", "--audit-nats-addr=nats://127.0.0.1:1", "--from-seq=5", "--to-seq=2"],
            "not a window of sequences",
        ),
        (
            ["replay", "--audit-nats-addr=nats://127.0.0.1:1", "--from-seq=1", "--since=1h"],
            "give one window",
        ),
        (
            ["replay", "--audit-nats-addr=nats://127.0.0.1:1", "--since=yesterday"],
            "neither an RFC 3339 time",
        ),
        (
            ["replay", "--audit-nats-addr=nats://127.0.0.1:1", "--from-seq=1"],
            "cannot connect to NATS",
        ),
        (["verify", "--audit-nats-addr=nats://127.0.0.1:1", "{log}"], "cannot connect to NATS"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, error) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(b"x\n")
    result = tool(*[a.format(log=log) for a in args])
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert error in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_a_corrupt_gzip_is_bad_input(tmp_path) -> None:
    path = tmp_path / "x.log.gz"
    packed = gzip.compress(b"".join(b"line %d\n" % i for i in range(100_000)))
    path.write_bytes(packed[: len(packed) // 2])
    result = tool("verify", str(path))
    assert result.returncode == 2 and "cannot read" in result.stderr, result.stderr


def test_memory_follows_the_sequences_logged_not_the_range(tmp_path, formatter) -> None:
    """Sequences 1 and 10,000,000: two bitmap chunks, and the gap is one range."""
    path = tmp_path / "a.log"
    path.write_bytes(
        formatter.format_batch(["e"] * 2, [reply(1), reply(10_000_000)], [b"a", b"b"], 0, 0)
    )
    record = read_files([str(path)], show_progress=False)
    assert len(record.streams["EVENTS"].seen.chunks) == 2
    code, report = verify_json(str(path))
    assert code == 1 and report["streams"]["EVENTS"]["gaps"][0]["count"] == 9_999_998


def test_a_progress_bar_shows_on_a_terminal_only(tmp_path, formatter) -> None:
    import fcntl
    import pty
    import struct
    import termios

    path = tmp_path / "a.log"
    path.write_bytes(
        formatter.format_batch(["e"] * 3, [reply(i) for i in (1, 2, 3)], [b"x"] * 3, 0, 0)
    )
    leader, follower = pty.openpty()
    # a terminal of 80 columns (a new pty has none, and tqdm draws no bar in 0)
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "events_audit", "verify", str(path)],
            stdout=subprocess.PIPE,
            stderr=follower,
            cwd=ROOT,
            timeout=60,
        )
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert result.returncode == 0 and b"verify" in shown and b"B/s" in shown, shown
    quiet = tool("verify", str(path))  # stderr not a terminal: no bar
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_a_line_a_killed_run_left_unfinished_is_cut_and_the_chain_verifies(
    nats_server, tmp_path
) -> None:
    """What kill -9 mid-write leaves (a write stopped at a page boundary, no
    record of it in the digest): the next run cuts the unfinished line, says
    so, and the chain verifies with no problem and nothing unattested."""
    url = nats_server.url
    digest = tmp_path / "audit.digest"
    args = ("--log-format=json", f"--audit-digest={digest}")
    publish(url, events(1, 100))
    log = run_service(tmp_path, url, "auto", 100, *args)
    unfinished = b'{"level":"info","msg":"Audit event","raw_data":"event 10'
    with log.open("ab") as handle:
        handle.write(unfinished)
    publish(url, events(101, 100))
    run_service(tmp_path, url, "auto", 200, *args)
    text = log.read_bytes()
    assert unfinished not in text
    cut = [json.loads(line) for line in text.splitlines() if b"inside a line" in line]
    assert len(cut) == 1 and cut[0]["level"] == "warning" and cut[0]["bytes"] == len(unfinished)
    _, report = verify_json(f"--digest={digest}", str(log))
    assert report["digest"]["problems"] == [] and report["digest"]["unattested"] == []
    assert report["streams"]["EVENTS"]["events"] == 200
