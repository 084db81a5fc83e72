"""Where log lines go: stderr (the original's default), stdout or a file.

Writes go straight to the file descriptor with ``os.writev`` (no user-space
buffer), so once ``write`` returns the lines are in the kernel; for a file,
``--log-fsync=batch`` (the default) also fdatasyncs them before any ack.  A file
is reopened on request (SIGHUP) before the next write, so logrotate can move
it away.  A failed write to a file is cut back, so no partial line stays
behind to be glued to the next one.
"""

from __future__ import annotations

import os
import stat
import sys
import threading
from collections.abc import Sequence

Buffer = bytes | bytearray | memoryview
IOV_MAX = 1024  # the smallest limit of a writev on Linux


class SinkError(Exception):
    """The log output cannot take the lines."""


class Sink:
    def __init__(self, target: str = "stderr", fsync: bool = True) -> None:
        self.target = target
        self.owns_fd = target not in ("stderr", "stdout")
        self.fsync_wanted = fsync and self.owns_fd
        self.reopen_requested = False
        # The worker thread writes batches while the event loop may log a
        # line of its own: one write at a time, or a pipe interleaves them.
        self.lock = threading.Lock()
        self.fd = -1
        if target == "stderr":
            self.fd = sys.stderr.fileno()
        elif target == "stdout":
            self.fd = sys.stdout.fileno()
        else:
            self.fd = self._open()
        self.regular = stat.S_ISREG(os.fstat(self.fd).st_mode)

    @property
    def fsync(self) -> bool:
        """Only a regular file can be fsynced (a FIFO or /dev/null says EINVAL)."""
        return self.fsync_wanted and self.regular

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
        os.close(self.fd)
        self.fd = fd
        self.regular = stat.S_ISREG(os.fstat(fd).st_mode)

    def write(self, data: Buffer | Sequence[Buffer]) -> None:
        """Write everything (and fsync a file) or raise SinkError.  Several
        buffers go out with writev, not joined first (large events: a copy
        and a batch's worth of memory less)."""
        parts = [data] if isinstance(data, Buffer) else [memoryview(p) for p in data if p]
        if not sum(len(p) for p in parts):
            return
        with self.lock:
            self._write(parts)

    def _write(self, parts: list) -> None:
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
            if self.fsync:
                # the data and the size that finds it; an mtime-only journal
                # commit per batch would cost CPU and buys an auditor nothing
                os.fdatasync(self.fd)
        except OSError as exc:
            if size >= 0 and 0 < written:
                try:  # no partial line may stay in the file
                    os.ftruncate(self.fd, size)
                except OSError:
                    pass
            raise SinkError(f"cannot write to {self.target}: {exc.strerror}") from None

    def close(self) -> None:
        if self.owns_fd and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
