"""The log output fails, stalls or moves: nothing is acked that is not written.

Every test runs the service as a subprocess against a real nats-server, for
both engines.  The service acks a message only after its line is written
(and, for a file, fsynced); when the write fails it NAKs with a growing delay
and pauses pulling, and TERMs a message at its last delivery with an error
line.  Service lines fall back to stderr when the log output fails, so the
errors are read from the service's stderr file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from events_audit.sink import LOCAL_FILE_SYSTEMS, Sink, SinkError, file_system_type
from servers import Service, consumer_info, deliveries, publish, wait_all_acked, wait_until
from test_service import base_args

FAILED_WRITE = "Failed to write log lines; the messages are NAKed and will be redelivered"


def start(tmp_path: Path, url: str, engine: str, output: str | None, *extra: str, **kw) -> Service:
    """The service at info level; ``output`` None means Service's own log file."""
    args = base_args(url, "--log-level=info", *extra, engine=engine)
    if output is not None:
        args.append(f"--log-output={output}")
    return Service(tmp_path, args, log_to_file=output is None, **kw).start()


def json_events(text: str) -> list[dict]:
    records = [json.loads(line) for line in text.split("\n") if line.strip()]
    return [r for r in records if r.get("msg", "").startswith("Received ")]


def assert_failing_without_acks(url: str, svc: Service, total: int, error: str) -> None:
    """The shared expectations of a sink that fails every write: a clear error,
    nothing acked, the messages redelivered, but slowly (no tight loop)."""
    svc.wait_for(re.escape(FAILED_WRITE))
    assert re.search(
        r'level=error msg="' + re.escape(FAILED_WRITE) + r'" error="' + re.escape(error) + '"',
        svc.output(),
    ), svc.output()[-2000:]
    first = consumer_info(url)
    started = time.monotonic()
    time.sleep(4)
    info = consumer_info(url)
    window = time.monotonic() - started
    assert info.ack_floor.stream_seq == 0, "a message was acked although its line was not written"
    assert info.num_ack_pending > 0 or info.num_pending == total
    assert info.num_redelivered > 0, "the NAKed messages did not come back"
    assert deliveries(info) > total
    # NAK delays 1 s, 2 s, 4 s, ...: about three deliveries of each message in
    # 4 s (one more when the window starts right before one); a tight loop makes hundreds.
    per_message = (deliveries(info) - deliveries(first)) / total
    assert per_message <= 4, f"{per_message:.1f} deliveries per message in {window:.1f}s"
    failures = svc.count(re.escape(FAILED_WRITE))
    assert failures <= 6 * total, f"{failures} failed writes: a retry loop"


# -- 1. /dev/full ----------------------------------------------------------------


def test_dev_full_acks_nothing_and_retries_slowly(nats_server, tmp_path, engine) -> None:
    total = 5
    publish(nats_server.url, [("events.f", b'{"id":"full-%d"}' % i) for i in range(total)])
    svc = start(tmp_path, nats_server.url, engine, "/dev/full", "--audit-max-deliver=-1")
    try:
        assert_failing_without_acks(
            nats_server.url, svc, total, "cannot write to /dev/full: No space left on device"
        )
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert consumer_info(nats_server.url).ack_floor.stream_seq == 0  # not even at shutdown
    assert "JetStream events audit server stopped" in svc.output()


# -- 2. a closed pipe --------------------------------------------------------------


def test_closed_pipe_acks_nothing(nats_server, tmp_path, engine) -> None:
    total = 5
    publish(nats_server.url, [("events.p", b'{"id":"pipe-%d"}' % i) for i in range(total)])
    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: every write is EPIPE
    try:
        svc = start(
            tmp_path,
            nats_server.url,
            engine,
            "stdout",
            "--audit-max-deliver=-1",
            stdout=write_end,
        )
    finally:
        os.close(write_end)
    try:
        assert_failing_without_acks(
            nats_server.url, svc, total, "cannot write to stdout: Broken pipe"
        )
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert consumer_info(nats_server.url).ack_floor.stream_seq == 0


# -- 3. a read-only file -------------------------------------------------------------


def chattr(flag: str, path: Path) -> None:
    """chattr +i / -i; skips the test where the attribute cannot be set."""
    tool = shutil.which("chattr")
    if tool is None:
        pytest.skip("chattr is not installed: cannot make a file immutable")
    result = subprocess.run([tool, flag, str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        # Root ignores the permission bits, so without the immutable attribute
        # (not root, or a file system without it) there is no honest read-only file.
        pytest.skip(f"chattr {flag} failed here ({result.stderr.strip()})")


def test_file_that_becomes_read_only(nats_server, tmp_path, engine) -> None:
    """An immutable file (chattr +i, which stops root too): writes fail with
    EPERM; once it is writable again every event is there exactly once."""
    log = tmp_path / "audit.log"
    publish(nats_server.url, [("events.r", b'{"id":"before-%d"}' % i) for i in range(3)])
    svc = start(
        tmp_path, nats_server.url, engine, str(log), "--log-format=json", "--audit-max-deliver=-1"
    )
    immutable = False
    try:
        wait_all_acked(nats_server.url, 3)
        chattr("+i", log)
        immutable = True
        publish(nats_server.url, [("events.r", b'{"id":"after-%d"}' % i) for i in range(3)])
        svc.wait_for(re.escape(FAILED_WRITE))
        assert "cannot write to " + str(log) + ": Operation not permitted" in svc.output()
        time.sleep(1.5)
        info = consumer_info(nats_server.url)
        assert info.ack_floor.stream_seq == 3 and info.num_ack_pending > 0
        chattr("-i", log)
        immutable = False
        wait_all_acked(nats_server.url, 6, timeout=30)
        assert svc.terminate() == 0
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(log)], check=False)
        svc.stop()
    events = json_events(log.read_text())
    assert sorted(e["sequence"] for e in events) == list(range(1, 7))
    assert "Log output is writable again" in log.read_text()


def test_read_only_file_at_start_is_a_clear_error(nats_server, tmp_path, engine) -> None:
    log = tmp_path / "audit.log"
    log.write_text("")
    chattr("+i", log)
    try:
        svc = start(tmp_path, nats_server.url, engine, str(log))
        assert svc.proc.wait(timeout=20) == 2
    finally:
        subprocess.run(["chattr", "-i", str(log)], check=False)
    assert f"cannot open log output '{log}': Operation not permitted" in svc.output()


# -- 4. recovery after SIGHUP -------------------------------------------------------


def test_recovers_when_the_output_is_repointed_and_reopened(nats_server, tmp_path, engine) -> None:
    """A symlink to /dev/full, re-pointed to a file, then SIGHUP: every event
    in the file exactly once, all acked.  (--audit-max-deliver=-1: the
    retries are never exhausted.)"""
    total = 20
    link, real = tmp_path / "audit.log", tmp_path / "real.log"
    link.symlink_to("/dev/full")
    publish(nats_server.url, [("events.s", b'{"id":"s-%d"}' % i) for i in range(total)])
    svc = start(
        tmp_path,
        nats_server.url,
        engine,
        str(link),
        "--log-format=json",
        "--audit-max-deliver=-1",
        "--audit-ack-wait=3s",  # caps the NAK delay at 3 s
    )
    try:
        svc.wait_for(re.escape(FAILED_WRITE))
        time.sleep(2.5)
        assert consumer_info(nats_server.url).ack_floor.stream_seq == 0
        staged = tmp_path / "audit.log.new"
        staged.symlink_to(real)
        os.replace(staged, link)
        svc.proc.send_signal(signal.SIGHUP)
        wait_all_acked(nats_server.url, total, timeout=30)
        publish(nats_server.url, [("events.s", b'{"id":"s-%d"}' % i) for i in range(total, 30)])
        wait_all_acked(nats_server.url, 30)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    events = json_events(real.read_text())
    assert sorted(e["sequence"] for e in events) == list(range(1, 31))
    assert sorted(e["event_id"] for e in events) == sorted(f"s-{i}" for i in range(30))
    assert "Log output is writable again" in real.read_text()


# -- 5. a slow sink -----------------------------------------------------------------


class SlowReader(threading.Thread):
    """Reads a FIFO in small pieces with pauses: a sink slower than the ack wait."""

    def __init__(self, path: Path, piece: int = 4096, pause: float = 0.05) -> None:
        super().__init__(daemon=True)
        # Opened here (non-blocking, so no writer is needed yet), then blocking.
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        os.set_blocking(self.fd, True)
        self.piece = piece
        self.pause = pause
        self.data = bytearray()
        self.lock = threading.Lock()
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            chunk = os.read(self.fd, self.piece)
            if not chunk:  # no writer (yet, or any more)
                time.sleep(0.01)
                continue
            with self.lock:
                self.data += chunk
            time.sleep(self.pause)

    def text(self) -> str:
        with self.lock:
            return self.data.decode("utf-8", "surrogateescape")

    def close(self) -> None:
        """Stop, keeping what is still in the FIFO (written, maybe acked, not yet read)."""
        self.stopping.set()
        self.join(timeout=30)
        os.set_blocking(self.fd, False)
        try:
            while chunk := os.read(self.fd, 65536):
                self.data += chunk
        except BlockingIOError:
            pass  # a writer is still there: what it writes later is not ours
        os.close(self.fd)


def big_events(count: int, size: int = 3000) -> list[tuple[str, bytes]]:
    pad = "x" * size
    return [
        ("events.big", json.dumps({"id": f"big-{i}", "data": {"pad": pad}}).encode())
        for i in range(count)
    ]


def test_slow_sink_is_kept_with_in_progress_acks(nats_server, tmp_path, engine) -> None:
    """Writing the batch takes longer than --audit-ack-wait (about 300 KB into
    a FIFO read at about 80 KB/s, with a 2 s ack wait): the in-progress acks
    keep the messages, none is redelivered, every line arrives exactly once.

    The fast engine used to write one parsed chunk at a time, each under a
    third of the ack wait, so no +WPI was ever sent and the last messages were
    redelivered and logged twice; now its queued chunks are written in one go
    and +WPI covers all of them.  (The default --log-fsync=batch: a FIFO is
    not fsynced.)
    """
    total = 100
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = SlowReader(fifo)
    reader.start()
    publish(nats_server.url, big_events(total))
    svc = start(
        tmp_path,
        nats_server.url,
        engine,
        str(fifo),
        "--log-format=json",
        "--audit-ack-wait=2s",
        f"--audit-pull-max-messages={total}",
    )
    try:
        # From the batch's first line in the FIFO (not from the start of the
        # process, whose start-up a loaded machine stretches) to its last ack.
        wait_until(lambda: "Received " in reader.text(), 30, "the first event line")
        started = time.monotonic()
        wait_all_acked(nats_server.url, total, timeout=60)
        elapsed = time.monotonic() - started
        info = consumer_info(nats_server.url)
        assert svc.terminate() == 0
    finally:
        svc.stop()
        reader.close()
    assert elapsed > 2, f"writing the batch took {elapsed:.1f}s, not more than the 2 s ack wait"
    sequences = [e["sequence"] for e in json_events(reader.text())]
    twice = sorted({s for s in sequences if sequences.count(s) > 1})
    # num_redelivered counts unacked messages only: the consumer sequence counts every delivery
    assert deliveries(info) == total, (
        f"{deliveries(info)} deliveries of {total}; logged more than once: {twice}"
    )
    assert sorted(sequences) == list(range(1, total + 1))


def test_fifo_with_the_default_fsync(nats_server, tmp_path, engine) -> None:
    """Was: fsync on the FIFO raised EINVAL after the lines were written, so
    every batch was NAKed and written again.  Only regular files are fsynced."""
    total = 5
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    reader = SlowReader(fifo, piece=65536, pause=0)
    reader.start()
    publish(nats_server.url, [("events.q", b'{"id":"q-%d"}' % i) for i in range(total)])
    svc = start(tmp_path, nats_server.url, engine, str(fifo), "--log-format=json")
    try:
        wait_all_acked(nats_server.url, total, timeout=10)
        info = consumer_info(nats_server.url)
        assert svc.terminate() == 0
    finally:
        svc.stop()
        reader.close()
    assert info.num_redelivered == 0 and deliveries(info) == total
    assert FAILED_WRITE not in svc.output()
    events = json_events(reader.text())
    assert sorted(e["sequence"] for e in events) == list(range(1, total + 1))


def test_dev_null_with_the_default_fsync(nats_server, tmp_path, engine) -> None:
    """/dev/null (a character device, EINVAL on fsync) takes every line: all acked at once."""
    total = 5
    publish(nats_server.url, [("events.n", b'{"id":"n-%d"}' % i) for i in range(total)])
    svc = start(tmp_path, nats_server.url, engine, "/dev/null", "--log-format=json")
    try:
        wait_all_acked(nats_server.url, total, timeout=10)
        info = consumer_info(nats_server.url)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert info.num_redelivered == 0 and deliveries(info) == total
    assert FAILED_WRITE not in svc.output()


# -- 6. file durability ----------------------------------------------------------------


def test_acked_means_in_the_file(nats_server, tmp_path, engine) -> None:
    """Polled while events keep arriving: whatever the consumer's ack floor
    says is acked is in the file already."""
    total = 3000
    publish(nats_server.url, [])  # the stream
    svc = start(
        tmp_path,
        nats_server.url,
        engine,
        None,  # Service's own log file
        "--log-format=json",
        "--audit-pull-max-messages=20",
    )
    log = svc.log_path
    svc.wait_for("Starting to listen")
    publisher = threading.Thread(
        target=publish,
        args=(nats_server.url, [("events.d", b'{"id":"d-%d"}' % i) for i in range(total)]),
    )
    publisher.start()
    checks = 0
    try:
        while True:
            info = consumer_info(nats_server.url)
            floor = info.ack_floor.stream_seq
            # read after the ack; a batch being written may show its first part
            text = log.read_text()
            in_file = {e["sequence"] for e in json_events(text[: text.rfind("\n") + 1])}
            missing = set(range(1, floor + 1)) - in_file
            assert not missing, f"acked but not in the file: {sorted(missing)[:10]}"
            checks += floor > 0
            if floor >= total:
                break
            time.sleep(0.02)
        assert svc.terminate() == 0
    finally:
        publisher.join()
        svc.stop()
    assert checks >= 3, "the ack floor was never seen while events were arriving"
    assert sorted(e["sequence"] for e in json_events(log.read_text())) == list(range(1, total + 1))


class FsyncCounter:
    def __init__(self) -> None:
        self.fds: list[int] = []

    def __call__(self, fd: int) -> None:
        self.fds.append(fd)


@pytest.mark.parametrize("writes", [1, 3])
def test_sink_fsyncs_a_file_once_per_write(tmp_path, monkeypatch, writes) -> None:
    fsync = FsyncCounter()
    monkeypatch.setattr(os, "fdatasync", fsync)
    sink = Sink(str(tmp_path / "a.log"), fsync=True)
    try:
        for i in range(writes):
            sink.write(b"line %d\n" % i * 100)
        sink.write(b"")  # nothing to write: nothing to sync
        assert fsync.fds == [sink.fd] * writes
    finally:
        sink.close()
    assert (tmp_path / "a.log").read_bytes().count(b"\n") == 100 * writes


def test_concurrent_writes_share_syncs_and_return_only_once_synced(tmp_path, monkeypatch) -> None:
    """The group commit: threads append while another's fdatasync waits; a
    write returns only after a sync that began once its lines were appended."""
    real_fdatasync = os.fdatasync
    synced_sizes: list[int] = []

    def slow_fdatasync(fd: int) -> None:
        size = os.fstat(fd).st_size  # what this sync covers
        time.sleep(0.02)  # a disk that takes its time
        real_fdatasync(fd)
        synced_sizes.append(size)

    monkeypatch.setattr(os, "fdatasync", slow_fdatasync)
    path = tmp_path / "a.log"
    sink = Sink(str(path), fsync=True)
    failures: list[str] = []

    def writer(name: int) -> None:
        for i in range(5):
            line = b"writer %d batch %d\n" % (name, i)
            sink.write([line * 50])
            end = path.read_bytes().index(line) + len(line) * 50
            if max(synced_sizes, default=0) < end:
                failures.append(f"writer {name} batch {i} returned before a sync covered it")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sink.close()
    assert not failures
    lines = path.read_bytes().splitlines()
    assert len(lines) == 4 * 5 * 50 and len(set(lines)) == 20
    assert len(synced_sizes) < 20, "every write synced alone: no group commit"


def test_sink_without_fsync_never_syncs(tmp_path, monkeypatch) -> None:
    fsync = FsyncCounter()
    monkeypatch.setattr(os, "fdatasync", fsync)
    sink = Sink(str(tmp_path / "a.log"), fsync=False)
    try:
        sink.write(b"x\n")
        sink.write(b"y\n")
    finally:
        sink.close()
    assert fsync.fds == []


def test_sink_syncs_only_regular_files(tmp_path, monkeypatch) -> None:
    """A FIFO, a pipe and /dev/null are written but not fsynced (EINVAL there)."""
    fsync = FsyncCounter()
    monkeypatch.setattr(os, "fdatasync", fsync)
    fifo = tmp_path / "audit.fifo"
    os.mkfifo(fifo)
    fifo_reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    pipe_reader, pipe_writer = os.pipe()
    try:
        for target in (str(fifo), f"/dev/fd/{pipe_writer}", os.devnull):
            sink = Sink(target, fsync=True)
            try:
                assert not sink.regular and not sink.fsync, target
                sink.write(b"a line\n")
            finally:
                sink.close()
        assert os.read(fifo_reader, 100) == b"a line\n"
        assert os.read(pipe_reader, 100) == b"a line\n"
    finally:
        for fd in (fifo_reader, pipe_reader, pipe_writer):
            os.close(fd)
    assert fsync.fds == []


def test_sink_syncs_again_once_reopened_on_a_regular_file(tmp_path, monkeypatch) -> None:
    """A symlink to /dev/null re-pointed to a file (SIGHUP): fsynced from then on."""
    fsync = FsyncCounter()
    monkeypatch.setattr(os, "fdatasync", fsync)
    link, real = tmp_path / "audit.log", tmp_path / "real.log"
    link.symlink_to(os.devnull)
    sink = Sink(str(link), fsync=True)
    try:
        sink.write(b"to /dev/null\n")
        assert fsync.fds == [] and not sink.fsync
        staged = tmp_path / "audit.log.new"
        staged.symlink_to(real)
        os.replace(staged, link)
        sink.request_reopen()
        sink.write(b"to the file\n")
        assert sink.regular and sink.fsync
        assert fsync.fds == [sink.fd]
    finally:
        sink.close()
    assert real.read_bytes() == b"to the file\n"


def test_a_failed_reopen_writes_nothing_and_is_tried_again(tmp_path) -> None:
    """logrotate moved the file away and the new one cannot be created yet: no
    line goes to the old file (it may be compressed or deleted next), the
    write fails, so its messages are NAKed, and the next write reopens."""
    logs = tmp_path / "logs"
    logs.mkdir()
    path, rotated = logs / "audit.log", logs / "audit.log.1"
    sink = Sink(str(path), fsync=False)
    try:
        sink.write(b"before\n")
        os.rename(path, rotated)
        chattr("+i", logs)  # the directory refuses the new file (root too)
        sink.request_reopen()
        try:
            for _ in range(2):
                with pytest.raises(SinkError, match="cannot open log output"):
                    sink.write(b"during\n")
        finally:
            subprocess.run(["chattr", "-i", str(logs)], check=False)
        sink.write(b"after\n")
    finally:
        sink.close()
    assert rotated.read_bytes() == b"before\n"
    assert path.read_bytes() == b"after\n"


MOUNTINFO = """\
22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
98 22 0:52 / /mnt/share rw,relatime shared:40 master:2 - nfs4 server:/export rw,vers=4.2
99 22 0:53 / /mnt/fuse rw,nosuid - fuse.sshfs host: rw
"""


@pytest.mark.parametrize(
    ("device", "kind"),
    [
        (os.makedev(254, 1), "ext4"),
        (os.makedev(0, 52), "nfs4"),
        (os.makedev(0, 53), "fuse.sshfs"),
        (os.makedev(8, 1), ""),
    ],
)
def test_file_system_type_from_mountinfo(device, kind) -> None:
    """Appends happen in the event loop only on a local file system (a network
    one can hang a write): the type comes from mountinfo, optional fields and all."""
    assert file_system_type(device, MOUNTINFO) == kind


def test_a_file_here_is_on_a_local_file_system(tmp_path) -> None:
    sink = Sink(str(tmp_path / "audit.log"))
    try:
        assert file_system_type(os.fstat(sink.fd).st_dev) in LOCAL_FILE_SYSTEMS
        assert sink.local
    finally:
        sink.close()


def test_an_append_is_lost_with_a_file_removed_before_its_sync(tmp_path) -> None:
    """``append`` now, ``sync`` later (the fast engine's way to a file): lines
    appended to a file that is removed before their sync are in no file, so
    their sync fails (their messages are NAKed), also when a later append
    already reopened the path; what goes to the new file syncs."""
    path = tmp_path / "audit.log"
    sink = Sink(str(path), fsync=True)
    try:
        assert sink.append(b"") == 0  # nothing to write, nothing to sync
        first = sink.append(b"one\n")
        sink.sync(first)
        second = sink.append(b"two\n")
        path.unlink()
        third = sink.append(b"three\n")  # sees the removal: a new file at the path
        fourth = sink.append(b"four\n")
        path.unlink()  # removed again, before anything is appended
        with pytest.raises(SinkError, match="removed or replaced while written"):
            sink.sync(second)
        with pytest.raises(SinkError, match="removed or replaced while written"):
            sink.sync(fourth)
        with pytest.raises(SinkError, match="removed or replaced while written"):
            sink.sync(third)
        fifth = sink.append(b"five\n")
        sink.sync(fifth)
    finally:
        sink.close()
    assert path.read_bytes() == b"five\n"


@pytest.mark.parametrize("target", ["stdout", "stderr"])
def test_sink_never_syncs_the_standard_streams(tmp_path, monkeypatch, target) -> None:
    fsync = FsyncCounter()
    monkeypatch.setattr(os, "fdatasync", fsync)
    with open(tmp_path / "stream", "w") as stream:  # a regular file: fsync would work
        monkeypatch.setattr(sys, target, stream)
        sink = Sink(target, fsync=True)
        sink.write(b"to the stream\n")
        sink.write(b"again\n")
        assert sink.fd == stream.fileno() and sink.regular
    assert (tmp_path / "stream").read_bytes() == b"to the stream\nagain\n"
    assert fsync.fds == []


def test_sink_cuts_a_partial_line_of_a_failed_write(tmp_path, monkeypatch) -> None:
    """A write that stops half-way (ENOSPC after some bytes) leaves no partial line."""
    path = tmp_path / "a.log"
    sink = Sink(str(path), fsync=False)
    real_writev = os.writev
    calls = []

    def short_then_full(fd, buffers):
        calls.append(sum(len(b) for b in buffers))
        if len(calls) == 1:
            return real_writev(fd, [bytes(buffers[0][:7])])
        raise OSError(28, "No space left on device")

    try:
        sink.write(b"first line\n")
        monkeypatch.setattr(os, "writev", short_then_full)
        with pytest.raises(Exception, match="No space left on device"):
            sink.write(b"second line\nthird line\n")
    finally:
        monkeypatch.undo()
        sink.close()
    assert path.read_bytes() == b"first line\n"


# -- 7. logrotate --------------------------------------------------------------------


def test_logrotate_rename_and_sighup(nats_server, tmp_path, engine) -> None:
    """The stats line (every 200 ms) is a write of the service's own: the first
    one after the SIGHUP reopens the path, so a file there again shows that the
    signal was handled, without guessing how long that takes."""
    log, rotated = tmp_path / "audit.log", tmp_path / "audit.log.1"
    publish(nats_server.url, [("events.l", b'{"id":"old-%d"}' % i) for i in range(10)])
    svc = start(
        tmp_path, nats_server.url, engine, str(log), "--log-format=json", "--stats-interval=200ms"
    )
    try:
        wait_all_acked(nats_server.url, 10)
        os.rename(log, rotated)
        publish(nats_server.url, [("events.l", b'{"id":"limbo-0"}')])  # before the signal
        wait_all_acked(nats_server.url, 11)
        assert not log.exists(), "the renamed file was reopened before the SIGHUP"
        svc.proc.send_signal(signal.SIGHUP)
        wait_until(log.exists, 15, "the log file reopened after SIGHUP")
        publish(nats_server.url, [("events.l", b'{"id":"new-%d"}' % i) for i in range(10)])
        wait_all_acked(nats_server.url, 21)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    old = [e["event_id"] for e in json_events(rotated.read_text())]
    new = [e["event_id"] for e in json_events(log.read_text())]
    # Written after the rename but before SIGHUP: still the old file, as logrotate expects.
    assert sorted(old) == sorted([f"old-{i}" for i in range(10)] + ["limbo-0"])
    assert sorted(new) == sorted(f"new-{i}" for i in range(10))
    assert stat.S_ISREG(log.stat().st_mode)
    assert "JetStream events audit server stopped" in log.read_text()


# -- 8. poison: the last delivery ---------------------------------------------------------


def test_messages_are_terminated_at_the_last_delivery(nats_server, tmp_path, engine) -> None:
    total = 4
    # Longer than the excerpt; one with invalid UTF-8 inside the excerpt.
    payloads = [b'{"id":"poison-%d","pad":"%s"}' % (i, b"p" * 400) for i in range(total)]
    payloads[1] = b"raw \xff poison " + b"r" * 400
    publish(nats_server.url, [("events.x", p) for p in payloads])
    svc = start(
        tmp_path,
        nats_server.url,
        engine,
        "/dev/full",
        "--log-format=json",
        "--audit-max-deliver=2",
        "--audit-ack-wait=1s",
    )
    try:
        wait_all_acked(nats_server.url, total, timeout=20)  # TERM counts as acked
        before = consumer_info(nats_server.url)
        time.sleep(2.5)
        after = consumer_info(nats_server.url)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    assert after.num_ack_pending == 0 and after.num_pending == 0
    assert after.num_redelivered == before.num_redelivered
    assert deliveries(after) == deliveries(before) == 2 * total, "deliveries went on"
    records = [json.loads(line) for line in svc.output().splitlines() if line.startswith("{")]
    failed = [r for r in records if r["msg"] == FAILED_WRITE]
    assert failed and all(r["level"] == "error" for r in failed)
    termed = [r for r in records if r["msg"].startswith("Message terminated after its last")]
    assert sorted(r["sequence"] for r in termed) == list(range(1, total + 1))
    for record in termed:
        assert record["level"] == "error" and record["stream"] == "EVENTS"
        assert record["delivered"] == 2
        payload = payloads[record["sequence"] - 1]
        # The excerpt is the payload's first 256 bytes (an invalid byte as U+FFFD).
        assert record["payload_excerpt"] == payload[:256].decode("utf-8", "replace")
        assert len(record["payload_excerpt"].encode("utf-8", "surrogateescape")) <= 256 + 2


# -- a file system that fills up -----------------------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path):
    """A 256 KiB tmpfs of the test's own: a disk that fills up for real (root only)."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_file_system_that_fills_up_then_has_room(nats_server, tmp_path, engine, small_fs) -> None:
    """The log's file system fills up half-way through the events: nothing is
    acked that is not in the file, no partial line stays behind; once there is
    room again (the tmpfs grown), every event is in the file exactly once."""
    total = 200  # raw lines of 2 KiB: 400 KiB for a 256 KiB file system
    body = b"fill-%d " + b"x" * 2000
    publish(nats_server.url, [("events.s", body % i) for i in range(total)])
    log = small_fs / "audit.log"
    svc = start(
        tmp_path, nats_server.url, engine, str(log), "--log-format=json", "--audit-max-deliver=-1"
    )
    try:
        # the service's own lines still fit: the error is in the log file itself
        full = re.compile(
            r'"error":"cannot write to [^"]*: No space left on device".*' + FAILED_WRITE
        )
        wait_until(
            lambda: log.exists() and full.search(log.read_text()),
            15,
            "a write finding the disk full",
        )
        info = consumer_info(nats_server.url)
        text = log.read_text()
        assert text.endswith("\n"), "a partial line stayed in the full file"
        in_file = {e["sequence"] for e in json_events(text)}
        assert 0 < len(in_file) < total
        assert set(range(1, info.ack_floor.stream_seq + 1)) <= in_file, "acked, not in the file"
        assert info.ack_floor.stream_seq < total
        subprocess.run(["mount", "-o", "remount,size=4m", str(small_fs)], check=True)
        wait_all_acked(nats_server.url, total, timeout=30)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    sequences = [e["sequence"] for e in json_events(log.read_text())]
    assert sorted(sequences) == list(range(1, total + 1))


# -- a log that a killed run left ending inside a line ---------------------------

WHOLE = b'{"level":"info","msg":"one"}\ntime="x" level=info msg=two\n'


@pytest.mark.parametrize(
    "unfinished",
    [
        b'{"level":"info","msg":"Audit event","raw_data":"cut sh',  # JSON
        b'time="07.12.2026 15:29:01.612" level=info msg="Audit ev',  # text
        b"{",  # cut right after its first byte
    ],
)
def test_an_unfinished_last_line_is_cut_at_start(tmp_path: Path, unfinished: bytes) -> None:
    """kill -9 can stop a large write at a page boundary; that line was never
    acked.  Left there, the next run's first line would be glued to it (found
    by test_a_kill_mid_run_leaves_a_chain_that_verifies: verify then says
    the restart's first record is not in the file)."""
    path = tmp_path / "audit.log"
    path.write_bytes(WHOLE + unfinished)
    sink = Sink(str(path))
    try:
        assert sink.unfinished_cut == len(unfinished)
        sink.sync(sink.append(b'{"msg":"next"}\n'))
    finally:
        sink.close()
    assert path.read_bytes() == WHOLE + b'{"msg":"next"}\n'


def test_a_file_of_one_unfinished_line_is_emptied(tmp_path: Path) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(b'{"level":"info","msg":"Star')
    sink = Sink(str(path))
    sink.close()
    assert sink.unfinished_cut == 27 and path.read_bytes() == b""


@pytest.mark.parametrize(
    "content",
    [
        WHOLE,  # ends with its line: nothing to cut
        WHOLE + b"\x00\x01 not a line of ours",  # another writer's bytes: left alone
        WHOLE + b"tie a knot",  # begins like no line of ours
        b"",
    ],
)
def test_what_is_not_an_unfinished_line_of_ours_is_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "audit.log"
    path.write_bytes(content)
    sink = Sink(str(path))
    sink.close()
    assert sink.unfinished_cut == 0 and path.read_bytes() == content


def test_a_tail_longer_than_any_line_is_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import events_audit.sink as sink_module

    monkeypatch.setattr(sink_module, "UNFINISHED_MAX", 1 << 10)
    monkeypatch.setattr(sink_module, "UNFINISHED_STEP", 100)
    path = tmp_path / "audit.log"
    content = WHOLE + b'{"raw_data":"' + b"x" * 5000  # no line end within the reach
    path.write_bytes(content)
    sink = Sink(str(path))
    sink.close()
    assert sink.unfinished_cut == 0 and path.read_bytes() == content
    path.write_bytes(WHOLE + b'{"raw_data":"' + b"x" * 500)  # within it, across steps
    sink = Sink(str(path))
    sink.close()
    assert path.read_bytes() == WHOLE
