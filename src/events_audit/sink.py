"""Where log lines go: stderr (the original's default), stdout or a file.

Writes go straight to the file descriptor with ``os.write`` (no user-space
buffer), so once ``write`` returns the lines are in the kernel and an ack may
follow.
"""

from __future__ import annotations

import os
import sys


class SinkError(Exception):
    """The log output cannot take the lines."""


class Sink:
    def __init__(self, target: str = "stderr") -> None:
        self.target = target
        self.owns_fd = target not in ("stderr", "stdout")
        if target == "stderr":
            self.fd = sys.stderr.fileno()
        elif target == "stdout":
            self.fd = sys.stdout.fileno()
        else:
            try:
                self.fd = os.open(
                    target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666
                )
            except OSError as exc:
                raise SinkError(f"cannot open log output {target!r}: {exc.strerror}") from None

    @property
    def is_terminal(self) -> bool:
        """logrus colours text output exactly when it goes to a terminal."""
        return not self.owns_fd and os.isatty(self.fd)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write everything or raise SinkError; a partial line never counts."""
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.fd, view)
            except InterruptedError:
                continue
            except OSError as exc:
                raise SinkError(f"cannot write to {self.target}: {exc.strerror}") from None
            view = view[written:]

    def close(self) -> None:
        if self.owns_fd and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
