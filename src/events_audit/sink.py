"""Where log lines go: stderr (the original's default), stdout or a file.

Writes go straight to the file descriptor with ``os.writev`` (no user-space
buffer), so once ``write`` returns the lines are in the kernel; for a file,
``--log-fsync=batch`` (the default) also fdatasyncs them before any ack.  A file
is reopened on request (SIGHUP) before the next write, so logrotate can move
it away, and by itself when the file was removed (lines written only to a
removed file would be in no file at all) or the path names another file.
A failed write to a file is cut back, so no partial line stays behind to be
glued to the next one.

The fdatasync is a group commit: a write appends under one lock, then syncs
under another, so the next batch goes into the page cache while the previous
one's sync waits for the disk, and one sync covers every write appended before
it started (measured alone with 1 MiB writes: 240-355 MB/s one after the
other, 480-550 MB/s overlapped).  ``append`` and ``sync`` are the two halves
of ``write``: the fast engine appends each batch as soon as it is formatted
and syncs later; a write appended to a file that was then removed or replaced
fails at its sync, as do the writes before a failed sync of a rotated file.

Lines on the disk are dropped from the page cache behind the last
``cached_tail`` bytes of the file (``--log-page-cache``; without fsync, the
drop sends them to the disk first and a later one drops them): the service writes
them once and never reads them back, and the kernel would otherwise keep
every one in memory (charged to a container's memory limit) and take fresh
pages for each new line.  Recycling the same pages cut the kernel's cost of a
write from 3.0 to 0.35 ns per byte on a virtual machine whose freed memory
goes back to its host, and pays on any machine once memory is full.  Log
shippers that follow the file closely still find its end in the cache.
"""

from __future__ import annotations

import mmap
import os
import stat
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

from .digest import DigestError

Buffer = bytes | bytearray | memoryview
IOV_MAX = 1024  # the smallest limit of a writev on Linux
REMOVED = "{} was removed or replaced while written"
# posix_fadvise drops whole pages only, and of a large folio (the page cache
# keeps file data in blocks of up to 2 MiB on x86-64) only one wholly inside
# the range: each drop reaches this far back, over the folio that straddled
# the last one's end.
PAGE = mmap.PAGESIZE
DROP_REACH = 8 << 20
DROP_STEP = 1 << 20  # a drop walks DROP_REACH of the cache: not for every small write
LOCAL_FILE_SYSTEMS = frozenset(
    "ext2 ext3 ext4 xfs btrfs bcachefs f2fs jfs reiserfs zfs tmpfs ramfs overlay vfat exfat".split()
)


def file_system_type(device: int, mountinfo: str | None = None) -> str:
    """The type of the file system mounted from ``device`` (an st_dev), from
    /proc/self/mountinfo; "" when it cannot be told."""
    if mountinfo is None:
        try:
            with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as file:
                mountinfo = file.read()
        except OSError:
            return ""
    wanted = f"{os.major(device)}:{os.minor(device)}"
    for line in mountinfo.splitlines():
        # id parent major:minor root mount-point options [optional...] - type source ...
        fields = line.split()
        if len(fields) > 2 and fields[2] == wanted and "-" in fields[3:]:
            after = fields[fields.index("-", 3) + 1 :]
            return after[0] if after else ""
    return ""


# An unfinished last line is cut at start-up only if it is no longer than
# this (a line of a 1 MiB payload escaped six-fold is under 7 MiB), looked
# for in steps of UNFINISHED_STEP, and begins like a JSON or text line.
UNFINISHED_MAX = 16 << 20
UNFINISHED_STEP = 64 << 10
LINE_STARTS = (b'{"', b"time=")


class SinkError(Exception):
    """The log output cannot take the lines."""


class Sink:
    @classmethod
    def from_settings(cls, settings: Any, digest: Any = None) -> Sink:
        """The log output the settings name (--log-output, --log-fsync, --log-page-cache)."""
        return cls(
            settings.log_output,
            fsync=settings.log_fsync == "batch",
            digest=digest,
            cached_tail=settings.log_page_cache,
        )

    def __init__(
        self,
        target: str = "stderr",
        fsync: bool = True,
        digest: Any = None,
        cached_tail: int = -1,
    ) -> None:
        """``digest``: a ``digest.DigestWriter`` told of every write (--audit-digest).
        ``cached_tail``: lines further than this from the end of a file on a
        local disk are dropped from the page cache once on it (-1: never)."""
        self.target = target
        self.cached_tail = cached_tail
        self.owns_fd = target not in ("stderr", "stdout")
        self.fsync_wanted = fsync and self.owns_fd
        self.reopen_requested = False
        # The worker threads write batches while the event loop may log a
        # line of its own: one append at a time, or a pipe interleaves them.
        self.lock = threading.Lock()
        self.sync_lock = threading.Lock()  # one fdatasync at a time; taken after lock
        self.appended = 0  # writes appended so far (tickets)
        self.synced = 0  # every write up to this ticket is on the disk
        # ... and none up to this one: they went into a file that is gone (or
        # whose last sync failed); lost_why says which
        self.lost_through = 0
        self.lost_why = ""
        self.fd = -1
        if target == "stderr":
            self.fd = sys.stderr.fileno()
        elif target == "stdout":
            self.fd = sys.stdout.fileno()
        else:
            self.fd = self._open()
        self._opened(self.fd)
        self.unfinished_cut = self._cut_unfinished_line()
        self.digest = digest
        if digest is not None:
            self._digest_call(digest.open_segment, target, os.fstat(self.fd).st_size, "start")
        # what the service should warn about (the sink runs in worker threads)
        self.notices: list[tuple[str, dict]] = []

    @property
    def fsync(self) -> bool:
        """Only a regular file can be fsynced (a FIFO or /dev/null says EINVAL)."""
        return self.fsync_wanted and self.regular

    def _opened(self, fd: int) -> None:
        st = os.fstat(fd)
        self.regular = stat.S_ISREG(st.st_mode)
        self.identity = (st.st_dev, st.st_ino)
        self.uncached = 0  # pages before this offset were dropped from the cache
        self.end = st.st_size  # where the next append starts (a reopened file's own)
        # a write to a local file system returns once the page cache has the
        # lines; one to NFS, SMB or FUSE may wait on a server that hangs
        self.local = self.regular and file_system_type(st.st_dev) in LOCAL_FILE_SYSTEMS

    def _cut_unfinished_line(self) -> int:
        """A kill -9 can stop a large write at a page boundary (the kernel
        ends a write to the page cache early once a fatal signal is pending),
        so a log may end inside a line.  That line was never acked (only
        whole, synced writes are), so its event comes back; left there, the
        next run's first line would be glued to it.  Cut it: the bytes after
        the last newline, when they begin like one of our lines and are not
        longer than any line can be (else the file is not ours to cut).
        The number of bytes cut."""
        if not self.regular or not self.owns_fd:
            return 0
        try:
            fd = os.open(self.target, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return 0
        try:
            size = self.end  # _opened: the file's size
            if not size or os.pread(fd, 1, size - 1) == b"\n":
                return 0
            reached = size  # the last newline is looked for backwards, a step at a time
            while reached and size - reached < UNFINISHED_MAX:
                step = min(reached, UNFINISHED_STEP)
                reached -= step
                newline = os.pread(fd, step, reached).rfind(b"\n")
                if newline >= 0:
                    start = reached + newline + 1
                    break
            else:
                if reached:  # no line end within reach
                    return 0
                start = 0  # the whole file is one unfinished line
            head = os.pread(fd, max(len(p) for p in LINE_STARTS), start)
            if not any(
                head.startswith(p) or (len(head) < len(p) and p.startswith(head))
                for p in LINE_STARTS
            ):
                return 0
            os.ftruncate(self.fd, start)
        except OSError:
            return 0  # cannot read or cut it: left as it is
        finally:
            os.close(fd)
        self.end = start
        return size - start

    def _moved(self) -> str:
        """Why the open file is no longer where the lines belong ('' when it
        is): "removed" or "replaced" when no name is left to it (lines written
        to it are in no file at all), "rotated" when it was renamed and the
        path names a new file (logrotate's create, before its SIGHUP).  A file
        only renamed, with no new one at the path, keeps its lines until the
        SIGHUP."""
        if not self.owns_fd:
            return ""
        try:
            st = os.stat(self.target)
        except FileNotFoundError:
            return "removed" if os.fstat(self.fd).st_nlink == 0 else ""
        except OSError:
            return ""  # cannot tell (a permission): keep the open file
        if (st.st_dev, st.st_ino) == self.identity:
            return ""
        return "replaced" if os.fstat(self.fd).st_nlink == 0 else "rotated"

    def _open(self) -> int:
        try:
            return os.open(
                self.target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666
            )
        except OSError as exc:
            raise SinkError(f"cannot open log output {self.target!r}: {exc.strerror}") from None

    @property
    def is_terminal(self) -> bool:
        """logrus colours text output exactly when it goes to a terminal."""
        return not self.owns_fd and os.isatty(self.fd)

    def request_reopen(self) -> None:
        """Reopen the file before the next write (SIGHUP; safe in a signal handler)."""
        self.reopen_requested = self.owns_fd

    def _reopen(self) -> None:
        # Until the new file opens, nothing is written: the old one may be
        # compressed or deleted by now, so the write fails (its messages are
        # NAKed) and the next write tries again.
        fd = self._open()
        self.reopen_requested = False
        with self.sync_lock:  # what went into the old file is synced before it closes
            try:
                if self.fsync:
                    os.fdatasync(self.fd)
                    if self.digest is not None:
                        self.digest.sync()
                    self.synced = self.appended
            except (OSError, DigestError):
                self._lose(f"cannot sync the rotated {self.target}")  # those writes fail, not ack
            finally:
                os.close(self.fd)
                self.fd = fd
                self._opened(fd)
            if self.digest is not None:  # a new segment for the new file (no sync meanwhile)
                self._digest_call(self.digest.close, "reopen")
                self._digest_call(
                    self.digest.open_segment, self.target, os.fstat(fd).st_size, "reopen"
                )

    def _digest_call(self, call: Callable, *args: Any) -> None:
        try:
            call(*args)
        except DigestError as exc:
            raise SinkError(str(exc)) from None

    def write(
        self,
        data: Buffer | Sequence[Buffer],
        wait: float = -1,
        sequences: tuple[int, int] = (0, 0),
    ) -> None:
        """Write everything (and fsync a file) or raise SinkError: ``append``
        then ``sync``.  Safe from several threads."""
        ticket = self.append(data, wait, sequences)
        if ticket:
            self.sync(ticket)

    def append(
        self,
        data: Buffer | Sequence[Buffer],
        wait: float = -1,
        sequences: tuple[int, int] = (0, 0),
    ) -> int:
        """Append the lines, not yet synced: the ticket ``sync`` takes (0 when
        there was nothing to write), or raise SinkError.  Several buffers go
        out with writev, not joined first (large events: a copy and a batch's
        worth of memory less).  ``wait``: how long another write may hold the
        output (-1: as long as it takes); the event loop's own lines must not
        wait for a hung one.  ``sequences``: the first and last stream
        sequence in the lines (0: none), for the digest."""
        parts = [data] if isinstance(data, Buffer) else [memoryview(p) for p in data if p]
        if not sum(len(p) for p in parts):
            return 0
        if not self.lock.acquire(timeout=wait):
            raise SinkError(f"{self.target} is busy: a write to it does not return")
        try:
            moved = self._moved()
            if moved:  # as SIGHUP would: the lines go where the path points
                self.reopen_requested = True
                self.notices.append((moved, {"path": self.target}))
                if moved != "rotated":
                    self._lose(REMOVED.format(self.target))
            start = self._append(list(parts))
            if self.digest is not None:
                # after the lines, before their sync: a crash in between
                # leaves lines without a record (reported), never the reverse
                try:
                    self.digest.record(start, parts, sequences)
                except DigestError as exc:
                    try:  # not written, then: no line without its record
                        os.ftruncate(self.fd, start)
                    except OSError:
                        pass
                    raise SinkError(str(exc)) from None
            self.appended += 1
            return self.appended
        finally:
            self.lock.release()

    def sync(self, ticket: int) -> None:
        """Once this returns, the write of ``ticket`` is in the file (and on
        the disk, when the file is fsynced), or raise SinkError."""
        if self.fsync:
            self._sync(ticket)
        elif self.local:
            # --log-fsync=never: the lines are dirty; the drop starts their
            # writeback and a later one (reaching back) drops them (not on
            # NFS or FUSE: this may run in the event loop, and starting a
            # write there may wait on a server)
            with self.sync_lock:
                self._drop_cached(self.end)
        if self._moved() in ("removed", "replaced"):
            with self.lock:
                self._lose(REMOVED.format(self.target))
        if ticket <= self.lost_through:
            raise SinkError(self.lost_why)

    def _lose(self, why: str) -> None:
        """Every write appended so far may be in no file: removed (or
        replaced) while written, they are not written, so their messages come
        back (the next write reopens the path)."""
        self.lost_through = self.appended
        self.lost_why = why

    def _append(self, parts: list) -> int:
        """Write the parts; where they start in a regular file (else -1)."""
        if self.reopen_requested:
            self._reopen()
        size = os.fstat(self.fd).st_size if self.regular else -1
        written = 0
        try:
            while parts:
                try:
                    count = os.writev(self.fd, parts[:IOV_MAX])
                except InterruptedError:
                    continue
                written += count
                while count:  # drop what went out, keep the rest of a part
                    if count >= len(parts[0]):
                        count -= len(parts.pop(0))
                    else:
                        parts[0] = memoryview(parts[0])[count:]
                        count = 0
        except OSError as exc:
            if size >= 0 and 0 < written:
                try:  # no partial line may stay in the file
                    os.ftruncate(self.fd, size)
                except OSError:
                    pass
            raise SinkError(f"cannot write to {self.target}: {exc.strerror}") from None
        if size >= 0:
            self.end = size + written
        return size

    def _sync(self, ticket: int) -> None:
        with self.sync_lock:
            if ticket <= self.lost_through:
                raise SinkError(self.lost_why)
            if self.synced >= ticket:
                return  # a sync that started after this write covered it
            covers = self.appended  # every write counted here is appended
            end = self.end  # and ended before this
            try:
                # the data and the size that finds it; an mtime-only journal
                # commit per batch would cost CPU and buys an auditor nothing
                os.fdatasync(self.fd)
                if self.digest is not None:  # its records of these writes too
                    self._digest_call(self.digest.sync)
            except OSError as exc:
                # The lines stay (later writes follow them): their messages
                # are NAKed, so a failed sync may log a line twice, never lose one.
                raise SinkError(f"cannot sync {self.target}: {exc.strerror}") from None
            self.synced = covers
            self._drop_cached(end)

    def _drop_cached(self, synced_end: int) -> None:
        """Drop the pages further than cached_tail from the file's end: those
        synced are clean, so nothing is written; dirty ones (no fsync) are
        only sent to the disk.  Advisory: an error changes nothing."""
        if self.cached_tail < 0:
            return
        upto = (synced_end - self.cached_tail) // PAGE * PAGE
        if upto < self.uncached + DROP_STEP:
            return
        start = max(0, self.uncached - DROP_REACH)
        try:
            os.posix_fadvise(self.fd, start, upto - start, os.POSIX_FADV_DONTNEED)
        except (OSError, AttributeError):  # AttributeError: no posix_fadvise here
            self.cached_tail = -1
            return
        self.uncached = upto

    def checkpoint(self) -> None:
        """A signed digest checkpoint of what was written since the last one."""
        if self.digest is not None:
            with self.lock:
                self._digest_call(self.digest.checkpoint, "interval")

    def close(self) -> None:
        if self.digest is not None:
            with self.lock:
                try:
                    self._digest_call(self.digest.close, "shutdown")
                except SinkError:
                    pass  # the service's exit says why the output failed
        if self.owns_fd and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
