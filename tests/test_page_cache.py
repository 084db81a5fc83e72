"""Synced lines leave the page cache behind the end of the log file
(--log-page-cache): the service never reads them back, and the memory they
would hold is recycled for the next lines.  Residency is read with mincore()
on a mapping of the file, which faults nothing in."""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import time
from pathlib import Path

import pytest

from events_audit import cli
from events_audit.config import ConfigError, resolve
from events_audit.sink import DROP_REACH, DROP_STEP, PAGE, Sink, file_system_type
from servers import Service, publish, wait_all_acked
from test_large_events import event, logged_ids
from test_service import base_args

MiB = 1 << 20
WRITE = 256 << 10
# the page cache's largest block of file data on x86-64 (a large folio): a
# drop takes only those wholly behind the tail
FOLIO = 2 * MiB
SLACK = FOLIO + DROP_STEP  # and a drop waits for a step's worth

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [
    ctypes.c_void_p,
    ctypes.c_size_t,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_long,
]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]


def cached_bytes(path: Path) -> int:
    """How much of the file is in the page cache (whole pages)."""
    size = path.stat().st_size
    if not size:
        return 0
    with open(path, "rb") as file:
        addr = _libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, file.fileno(), 0)
        if addr in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
    try:
        pages = -(-size // PAGE)
        vector = ctypes.create_string_buffer(pages)
        if _libc.mincore(addr, size, vector) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
        return sum(b & 1 for b in vector.raw) * PAGE
    finally:
        _libc.munmap(addr, size)


@pytest.fixture
def disk_dir(tmp_path: Path) -> Path:
    """A directory whose file system can drop pages (tmpfs keeps them: they are its storage)."""
    if file_system_type(tmp_path.stat().st_dev) in ("tmpfs", "ramfs", ""):
        pytest.skip("the temporary directory is not on a disk file system")
    return tmp_path


def write_lines(sink: Sink, total: int) -> None:
    line = b"x" * (WRITE - 1) + b"\n"
    for _ in range(total // WRITE):
        sink.write(line)


@pytest.mark.parametrize("tail", [0, 1 * MiB, 3 * MiB + 123])
def test_synced_lines_leave_the_cache_behind_the_tail(disk_dir, tail) -> None:
    path = disk_dir / "audit.log"
    sink = Sink(str(path), fsync=True, cached_tail=tail)
    write_lines(sink, 8 * MiB)
    sink.close()
    assert path.stat().st_size == 8 * MiB
    assert cached_bytes(path) <= tail + SLACK
    assert path.read_bytes().count(b"\n") == 8 * MiB // WRITE  # all there, read back from the disk


def test_without_a_limit_the_cache_keeps_them(disk_dir) -> None:
    path = disk_dir / "audit.log"
    sink = Sink(str(path), fsync=True, cached_tail=-1)
    write_lines(sink, 8 * MiB)
    sink.close()
    assert cached_bytes(path) >= 7 * MiB  # (a machine short of memory may evict some)


def test_unsynced_lines_leave_the_cache_once_written(disk_dir) -> None:
    """--log-fsync=never: a drop finds the lines dirty and sends them to the
    disk; a later one, reaching back, drops them (kept, the kernel would
    hold all 40 MiB)."""
    path = disk_dir / "audit.log"
    sink = Sink(str(path), fsync=False, cached_tail=1 * MiB)
    line = b"x" * (WRITE - 1) + b"\n"
    for i in range(40 * MiB // WRITE):
        sink.write(line)
        if i % 4 == 3:
            time.sleep(0.005)  # a slow disk's time to take what the last drop sent
    sink.close()
    assert path.stat().st_size == 40 * MiB
    assert cached_bytes(path) <= 1 * MiB + DROP_REACH + SLACK


def test_a_reopened_file_is_dropped_from_its_own_start(disk_dir) -> None:
    """logrotate moved the file: the new one's pages are dropped from its
    first byte, the old one's stay as they were."""
    path = disk_dir / "audit.log"
    sink = Sink(str(path), fsync=True, cached_tail=1 * MiB)
    write_lines(sink, 4 * MiB)
    path.rename(disk_dir / "audit.log.1")
    sink.request_reopen()
    write_lines(sink, 4 * MiB)
    sink.close()
    assert path.stat().st_size == 4 * MiB
    assert cached_bytes(path) <= 1 * MiB + SLACK


@pytest.mark.parametrize(
    "value,expected",
    [("-1", -1), ("0", 0), ("16MiB", 16 * MiB), ("1048576", MiB), ("1GB", 1 << 30)],
)
def test_the_setting(value, expected) -> None:
    settings = resolve(cli.parse_args(["--log-page-cache", value]), environ={})
    assert settings.log_page_cache == expected


def test_the_default_keeps_16_mib() -> None:
    assert resolve(cli.parse_args([]), environ={}).log_page_cache == 16 * MiB


@pytest.mark.parametrize("value", ["-2", "lots", "1.5MB", ""])
def test_a_bad_value_is_a_config_error(value) -> None:
    with pytest.raises(ConfigError, match="log-page-cache"):
        resolve(cli.parse_args(["--log-page-cache", value]), environ={})


def test_the_service_keeps_only_the_end_of_its_log_cached(nats_server, disk_dir, engine) -> None:
    """20 MiB of 64 KiB events through the service with a 1 MiB tail: at the
    end at most the tail and the last batches' lines are cached."""
    count, size = 320, 64 << 10
    svc = Service(
        disk_dir,
        base_args(
            nats_server.url,
            "--log-format=json",
            "--log-level=info",
            "--log-page-cache=1MiB",
            "--audit-pull-max-messages=100",
            engine=engine,
        ),
    )
    svc.start()
    try:
        svc.wait_for("Starting to listen")
        publish(nats_server.url, [("events.big", event(i, size)) for i in range(count)])
        wait_all_acked(nats_server.url, count, timeout=60)
        assert svc.terminate() == 0
    finally:
        svc.stop()
    written = svc.log_path.stat().st_size
    assert written > count * size
    # every append is covered by a sync that drops what lies behind the tail
    assert cached_bytes(svc.log_path) <= 1 * MiB + SLACK, (cached_bytes(svc.log_path), written)
    assert sorted(logged_ids(svc.output())) == list(range(count))
