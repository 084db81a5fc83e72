"""Tamper evidence (--audit-digest, verify --digest, keygen) against a real
nats-server: a clean record verifies; each kind of change is named."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from servers import NatsServer, Service, consumer_info, publish, wait_all_acked, wait_until
from test_service import base_args

ROOT = Path(__file__).resolve().parent.parent


def tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "events_audit", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("AUDIT_LISTNER_")},
    )


def events(first: int, count: int) -> list[tuple[str, bytes]]:
    return [
        ("events.a", json.dumps({"id": f"e{i}", "type": "t", "data": {"n": i}}).encode())
        if i % 3
        else ("events.b", b"raw event %d" % i)
        for i in range(first, first + count)
    ]


@pytest.fixture(scope="module", params=["fast", "python"])
def record(request, tmp_path_factory) -> dict:
    """One run of the service with a digest and a key: 600 events, a
    logrotate-style rotation after 300 (rename both files, SIGHUP), a stop
    and a second start on the same files (the chain goes on)."""
    engine = request.param
    work = tmp_path_factory.mktemp(f"digest-{engine}")
    server = NatsServer(work).start()
    keys = tool("keygen", str(work / "signing"))
    assert keys.returncode == 0, keys.stderr
    log, digest = work / "audit.log", work / "audit.digest"
    args = base_args(
        server.url,
        "--log-level=info",
        "--log-format=json",
        f"--audit-digest={digest}",
        f"--audit-digest-key={work / 'signing.key'}",
        "--audit-digest-interval=1s",
        engine=engine,
    )
    try:
        svc = Service(work, [*args, f"--log-output={log}"], log_to_file=False).start()
        publish(server.url, events(1, 300))
        wait_all_acked(server.url, 300)
        wait_until(
            lambda: '"reason":"interval"' in digest.read_text(), 10, "an interval checkpoint"
        )
        os.rename(log, work / "audit.log.1")
        os.rename(digest, work / "audit.digest.1")
        svc.proc.send_signal(signal.SIGHUP)
        publish(server.url, events(301, 200))
        wait_all_acked(server.url, 500)
        assert svc.terminate() == 0
        svc = Service(work, [*args, f"--log-output={log}"], log_to_file=False).start()
        publish(server.url, events(501, 100))
        wait_all_acked(server.url, 600)
        assert svc.terminate() == 0
    finally:
        server.stop()
    return {
        "dir": work,
        "logs": [work / "audit.log.1", work / "audit.log"],
        "digests": [work / "audit.digest.1", work / "audit.digest"],
        "public": work / "signing.pub",
    }


def verify(rec: dict, logs: list[Path], *extra: str, digests: list[Path] | None = None):
    args = ["verify", "--format=json", "--public-key", str(rec["public"])]
    for path in digests or rec["digests"]:
        args += ["--digest", str(path)]
    result = tool(*args, *extra, *map(str, logs))
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, json.loads(result.stdout)


def copies(rec: dict, tmp_path: Path) -> list[Path]:
    out = []
    for path in rec["logs"]:
        shutil.copy(path, tmp_path / path.name)
        out.append(tmp_path / path.name)
    return out


def test_a_clean_record_verifies_across_rotation_and_restart(record) -> None:
    code, report = verify(record, record["logs"])
    digest = report["digest"]
    assert digest["problems"] == [] and digest["unattested"] == [], digest
    assert code == 0 and report["complete"]
    assert report["streams"]["EVENTS"]["events"] == 600
    assert digest["segments"] == 3  # start, SIGHUP, restart
    assert digest["signatures_checked"] and digest["last_signed_checkpoint"]
    kinds = [json.loads(line)["kind"] for line in record["digests"][1].read_text().splitlines()]
    assert kinds[0] == "open" and kinds[-1] == "checkpoint"  # the shutdown's
    human = tool(
        "verify",
        "--public-key",
        str(record["public"]),
        *(f"--digest={d}" for d in record["digests"]),
        *map(str, record["logs"]),
    )
    assert human.returncode == 0, human.stdout + human.stderr
    assert "the files are as the service wrote them" in human.stdout


def test_a_gzipped_rotated_file_verifies_the_same(record, tmp_path) -> None:
    logs = copies(record, tmp_path)
    with open(logs[0], "rb") as plain, gzip.open(tmp_path / "audit.log.1.gz", "wb") as packed:
        shutil.copyfileobj(plain, packed)
    code, report = verify(record, [tmp_path / "audit.log.1.gz", logs[1]])
    assert code == 0 and report["digest"]["intact"], report["digest"]


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def _offset(lines: list[bytes], index: int) -> int:
    return sum(len(line) for line in lines[:index])


@pytest.mark.parametrize("change", ["edited", "inserted", "deleted", "reordered"])
def test_a_changed_line_is_named_with_its_line_and_byte(record, tmp_path, change) -> None:
    logs = copies(record, tmp_path)
    lines = _lines(logs[1])
    at = 40  # line 41 of the current file
    if change == "edited":
        last = lines[at][-2:-1]
        lines[at] = lines[at][:-2] + (b"X" if last != b"X" else b"Y") + b"\n"
    elif change == "inserted":
        lines.insert(at, lines[at + 5])
    elif change == "deleted":
        del lines[at]
    else:
        lines[at], lines[at + 1] = lines[at + 1], lines[at]
    logs[1].write_bytes(b"".join(lines))
    code, report = verify(record, logs)
    problems = report["digest"]["problems"]
    assert code == 1 and not report["complete"]
    assert problems[0]["kind"] == "line_differs", problems
    assert problems[0]["line"] == at + 1 and problems[0]["byte"] == _offset(lines, at)
    assert problems[0]["text"].split(": ")[1].startswith(change), problems[0]["text"]


def test_a_file_cut_short_is_named_against_the_last_checkpoint(record, tmp_path) -> None:
    logs = copies(record, tmp_path)
    data = logs[0].read_bytes()
    logs[0].write_bytes(data[: len(data) // 2])
    code, report = verify(record, logs)
    texts = [p["text"] for p in report["digest"]["problems"]]
    assert code == 1
    assert any("cut short" in t and "below the last signed checkpoint" in t for t in texts), texts


def test_a_missing_file_of_the_chain_is_named(record) -> None:
    code, report = verify(record, record["logs"][1:])
    kinds = [p["kind"] for p in report["digest"]["problems"]]
    assert code == 1 and "missing_file" in kinds, report["digest"]


def test_a_missing_digest_file_breaks_the_chain(record) -> None:
    code, report = verify(record, record["logs"][1:], digests=record["digests"][1:])
    kinds = [p["kind"] for p in report["digest"]["problems"]]
    assert code == 1 and "chain_break" in kinds, report["digest"]


def test_a_forged_digest_fails_its_signature_or_its_chain(record, tmp_path) -> None:
    """Lines edited and their checksums and chain recomputed without the key:
    the signed checkpoint no longer matches."""
    logs = copies(record, tmp_path)
    digest = tmp_path / "audit.digest"
    records = [json.loads(line) for line in record["digests"][1].read_text().splitlines()]
    for rec in records:
        if rec["kind"] == "checkpoint":
            rec["end"] += 1  # what a forger would have to change
            break
    digest.write_text("".join(json.dumps(r) + "\n" for r in records))
    code, report = verify(record, logs, digests=[record["digests"][0], digest])
    kinds = [p["kind"] for p in report["digest"]["problems"]]
    assert code == 1 and "bad_signature" in kinds, report["digest"]


def test_bytes_not_written_by_the_service_are_not_attested(record, tmp_path) -> None:
    logs = copies(record, tmp_path)
    with open(logs[1], "ab") as handle:
        handle.write(b'{"level":"info","msg":"Received raw event","stream":"EVENTS"}\n')
    code, report = verify(record, logs)
    unattested = report["digest"]["unattested"]
    assert code == 1 and len(unattested) == 1 and unattested[0]["lines"] == 1, report["digest"]


def test_another_key_is_refused(record, tmp_path) -> None:
    assert tool("keygen", str(tmp_path / "other")).returncode == 0
    rec = dict(record, public=tmp_path / "other.pub")
    code, report = verify(rec, record["logs"])
    assert code == 1 and "bad_signature" in [p["kind"] for p in report["digest"]["problems"]]


def test_a_kill_mid_run_leaves_a_chain_that_verifies(nats_server, tmp_path, engine) -> None:
    """kill -9 while batches are written and acked, then a restart on the same
    files: the chain goes on from the last whole record; nothing is altered,
    every event is there, and no acked event is only in unattested bytes."""
    url = nats_server.url
    log, digest = tmp_path / "audit.log", tmp_path / "audit.digest"
    args = base_args(
        url,
        "--log-level=info",
        "--log-format=json",
        "--audit-ack-wait=2s",  # what the kill held comes back sooner
        f"--audit-digest={digest}",
        engine=engine,
    )
    total = 20_000
    publish(url, events(1, total))
    svc = Service(tmp_path, [*args, f"--log-output={log}"], log_to_file=False).start()

    def acked_through() -> int:
        try:
            return consumer_info(url).ack_floor.stream_seq
        except Exception:  # not made yet
            return 0

    wait_until(lambda: acked_through() >= 2000, 30, "some acks")
    svc.kill()
    acked = consumer_info(url).ack_floor.stream_seq
    assert acked < total, "the run was over before the kill"
    svc = Service(tmp_path, [*args, f"--log-output={log}"], log_to_file=False).start()
    try:
        wait_all_acked(url, total, timeout=90)
        wait_until(lambda: log.read_bytes().count(b"Starting to listen") >= 2, 15, "the restart")
        assert svc.terminate() == 0
    finally:
        svc.stop()
    result = tool("verify", "--format=json", f"--digest={digest}", str(log))
    report = json.loads(result.stdout)
    assert report["digest"]["problems"] == [], report["digest"]
    assert report["streams"]["EVENTS"]["events"] == total
    attested_end = min((u["byte"] for u in report["digest"]["unattested"]), default=None)
    if attested_end is not None:  # lines cut off their record by the kill: none of them acked
        data = log.read_bytes()
        for line in data[attested_end:].splitlines():
            if b'"sequence":' in line and line.startswith(b"{"):
                record = json.loads(line)
                if record.get("delivered") == 1:
                    assert record["sequence"] > acked


def test_a_digest_that_cannot_be_written_acks_nothing_and_loses_nothing(
    nats_server, tmp_path, engine
) -> None:
    """The digest's path re-pointed to /dev/full (then SIGHUP): no batch is
    acked without its record and no line stays without one; pointed to a file
    again, the service goes on, and the whole record verifies."""
    url = nats_server.url
    link, first, second = tmp_path / "audit.digest", tmp_path / "d1", tmp_path / "d2"
    link.symlink_to(first)
    log = tmp_path / "audit.log"
    args = base_args(url, "--log-level=info", f"--audit-digest={link}", engine=engine)
    svc = Service(
        tmp_path,
        # (a short ack wait caps the NAK backoff: the retry after the repair comes sooner)
        [*args, "--audit-max-deliver=-1", "--audit-ack-wait=5s", f"--log-output={log}"],
        log_to_file=False,
    )
    svc.start()
    try:
        publish(url, events(1, 100))
        wait_all_acked(url, 100)
        os.remove(link)
        link.symlink_to("/dev/full")
        svc.proc.send_signal(signal.SIGHUP)
        publish(url, events(101, 100))
        wait_until(lambda: "cannot write the digest" in svc.output(), 15, "the digest error")
        time.sleep(1)
        assert consumer_info(url).ack_floor.stream_seq == 100  # nothing acked meanwhile
        os.remove(link)
        link.symlink_to(second)
        wait_all_acked(url, 200, timeout=40)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    result = tool("verify", "--format=json", f"--digest={first}", f"--digest={second}", str(log))
    report = json.loads(result.stdout)
    assert result.returncode == 0, report["digest"]
    assert report["streams"]["EVENTS"]["events"] == 200


# -- bad input: one line, exit 2 -------------------------------------------------


def test_keygen_never_overwrites_and_keeps_the_key_private(tmp_path) -> None:
    assert tool("keygen", str(tmp_path / "k")).returncode == 0
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600
    before = (tmp_path / "k.key").read_bytes()
    again = tool("keygen", str(tmp_path / "k"))
    assert again.returncode == 2 and "File exists" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert (tmp_path / "k.key").read_bytes() == before


@pytest.mark.parametrize(
    "args, error",
    [
        (["--audit-digest=/tmp/x.digest"], "--audit-digest needs --log-output to be a file"),
        (["--audit-digest-key=k.key"], "--audit-digest-key needs --audit-digest PATH"),
        (
            [
                "--audit-digest={d}/a.digest",
                "--log-output={d}/a.log",
                "--audit-digest-key={d}/a.log",
            ],
            "is not an unencrypted PEM private key",
        ),
    ],
)
def test_digest_settings_that_cannot_work_are_refused_at_start(tmp_path, args, error) -> None:
    (tmp_path / "a.log").write_text("not a key\n")
    args = [a.format(d=tmp_path) for a in args]
    result = tool("--audit=nats", "--audit-nats-addr=nats://127.0.0.1:1", *args)
    assert result.returncode == 2 and error in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_verify_refuses_a_file_that_is_not_a_digest(tmp_path) -> None:
    (tmp_path / "a.log").write_text("x\n")
    result = tool("verify", "--digest", str(tmp_path / "a.log"), str(tmp_path / "a.log"))
    assert result.returncode == 2 and "is not a digest record" in result.stderr, result.stderr


def test_a_start_and_stop_with_nothing_written_verifies(tmp_path) -> None:
    """A restart that writes nothing signs the open record's chain value at
    shutdown: linked to the run before, and nothing is reported."""
    from events_audit.digest import DigestWriter, check_digests, load_private_key
    from events_audit.sink import Sink

    assert tool("keygen", str(tmp_path / "k")).returncode == 0
    key = load_private_key(str(tmp_path / "k.key"))
    log, digest = tmp_path / "a.log", tmp_path / "a.digest"
    sink = Sink(str(log), fsync=True, digest=DigestWriter(str(digest), key))
    sink.write([b"one\n", b"two\n"], sequences=(1, 2))
    sink.close()
    for _ in range(2):  # two idle runs on the same files
        Sink(str(log), fsync=True, digest=DigestWriter(str(digest), key)).close()
    kinds = [json.loads(line)["kind"] for line in digest.read_text().splitlines()]
    assert kinds == ["open", "write", "checkpoint"] + ["open", "checkpoint"] * 2
    report = check_digests([str(digest)], [str(log)], str(tmp_path / "k.pub"))
    assert report["intact"] and report["problems"] == [], report
    assert report["segments"] == 3
