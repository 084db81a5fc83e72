"""No silent gap: every event the stream held is logged or named, under field
faults too (real nats-server processes, both engines)."""

from __future__ import annotations

import os
import threading

from events_audit.sink import Sink, SinkError
from servers import publish, wait_all_acked
from test_sink_faults import json_events, start

MOVED = "The log file was {} under the service; reopened its path"


# -- the log file removed or replaced under the service -------------------------


def test_sink_reopens_a_removed_or_replaced_path(tmp_path) -> None:
    path = tmp_path / "audit.log"
    sink = Sink(str(path), fsync=True)
    try:
        sink.write(b"one\n")
        path.unlink()
        sink.write(b"two\n")  # noticed before the write: into a new file at the path
        assert sink.notices == [("removed", {"path": str(path)})]
        sink.notices.clear()
        other = tmp_path / "other.log"
        other.write_bytes(b"other\n")
        os.replace(other, path)
        sink.write(b"three\n")
        assert sink.notices == [("replaced", {"path": str(path)})]
        sink.notices.clear()
        sink.write(b"four\n")
        assert sink.notices == []
    finally:
        sink.close()
    assert path.read_bytes() == b"other\nthree\nfour\n"


def test_lines_of_a_file_removed_while_written_are_not_taken_as_written(
    tmp_path, monkeypatch
) -> None:
    """Removed between the write and its end: the lines are in no file, so the
    write fails (its messages are NAKed and come back) and the next one reopens."""
    path = tmp_path / "audit.log"
    sink = Sink(str(path), fsync=True)
    real_fdatasync = os.fdatasync

    def remove_then_sync(fd: int) -> None:
        path.unlink()
        real_fdatasync(fd)

    try:
        monkeypatch.setattr(os, "fdatasync", remove_then_sync)
        try:
            sink.write(b"lost\n")
        except SinkError as exc:
            assert "removed or replaced while written" in str(exc)
        else:
            raise AssertionError("a write into a removed file counted as written")
        monkeypatch.setattr(os, "fdatasync", real_fdatasync)
        sink.write(b"again\n")
    finally:
        sink.close()
    assert path.read_bytes() == b"again\n"


def test_log_file_removed_then_replaced_while_events_flow(nats_server, tmp_path, engine) -> None:
    """Every event after each change is in the file at the path, and one
    warning says what happened (it goes to that file too)."""
    total = 1500
    publish(nats_server.url, [])
    svc = start(
        tmp_path, nats_server.url, engine, None, "--log-format=json", "--audit-pull-max-messages=20"
    )
    log = svc.log_path
    svc.wait_for("Starting to listen")

    def events(first: int, count: int) -> list[tuple[str, bytes]]:
        return [("events.d", b'{"id":"d-%d"}' % i) for i in range(first, first + count)]

    try:
        publish(nats_server.url, events(0, 500))
        wait_all_acked(nats_server.url, 500)
        log.unlink()  # an operator, a cleanup job
        publisher = threading.Thread(target=publish, args=(nats_server.url, events(500, 500)))
        publisher.start()
        publisher.join()
        wait_all_acked(nats_server.url, 1000)
        text = log.read_text()
        assert sorted(e["sequence"] for e in json_events(text)) == list(range(501, 1001))
        assert text.count(MOVED.format("removed")) == 1
        replacement = tmp_path / "new.log"
        replacement.write_text("")
        os.replace(replacement, log)  # a rotation that forgot the SIGHUP
        publish(nats_server.url, events(1000, 500))
        wait_all_acked(nats_server.url, total)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    text = log.read_text()
    assert sorted(e["sequence"] for e in json_events(text)) == list(range(1001, total + 1))
    assert text.count(MOVED.format("replaced")) == 1


def test_a_file_only_renamed_keeps_its_lines_until_sighup(tmp_path) -> None:
    """logrotate renames, then signals: meanwhile the lines are in the renamed file."""
    path, rotated = tmp_path / "audit.log", tmp_path / "audit.log.1"
    sink = Sink(str(path), fsync=True)
    try:
        sink.write(b"one\n")
        os.rename(path, rotated)
        sink.write(b"two\n")
        assert sink.notices == [] and not path.exists()
        sink.request_reopen()
        sink.write(b"three\n")
    finally:
        sink.close()
    assert rotated.read_bytes() == b"one\ntwo\n" and path.read_bytes() == b"three\n"
