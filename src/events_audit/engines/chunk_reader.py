"""Hand the data path the socket's bytes where they landed, not copies.

With asyncio's StreamReader every byte is copied three times before the data
path sees it: the transport copies what it read into a new bytes object, the
reader appends it to its buffer and ``read()`` slices it out again; and the
data path copied a frame cut by the end of a chunk once more to make it whole
(with events of 64 KiB and more, about as much CPU as formatting them).  nats-py's
read loop takes whatever ``read()`` returns, so for its connections the fast
engine switches the connection's reader to ``ChunkReader``: the same object,
state and EOF and error handling, but the socket reads straight into one
buffer of the reader's (asyncio's BufferedProtocol, put in front of the
connection's own protocol), and ``read()`` returns a view of what has come
since the last read, behind the unfinished frame the data path left there
(``taken``).  A large frame is thus whole where it landed.

Hand-written because asyncio offers no way to get a StreamReader's bytes
without copies; it leans on StreamReader's attributes, which have been the
same since Python 3.7, and leaves any reader alone that lacks one of them.
"""

from __future__ import annotations

import asyncio
from typing import Any

# what ChunkReader uses of StreamReader's insides
_NEEDS = ("_buffer", "_eof", "_exception", "_limit", "_paused", "_transport", "_waiter")
# The buffer the socket reads into, and so the most one read takes: AREA,
# or room for READ_EVENTS large events up to AREA_MAX (``ChunkReader.fit``).
# Larger reads mean fewer calls and batches per event: with 64 KiB events,
# 1 MiB reads gave 1.22x the msgs/s of 256 KiB ones; with 1 KiB events, no
# more msgs/s and 4 MB more RSS.
AREA = 256 << 10
AREA_MAX = 1 << 20
READ_EVENTS = 16
# A read gets at least this much room; the unfinished frame is moved to the
# front of the buffer (or the buffer grown) to make it.
MIN_READ = 64 << 10


def area_for(per_message: float) -> int:
    """The buffer for events of about ``per_message`` bytes: room for
    READ_EVENTS of them up to AREA_MAX, and always for one and a read
    (a power of two: an average that moves a little changes nothing)."""
    wanted = max(AREA, min(AREA_MAX, int(READ_EVENTS * per_message)), int(per_message) + MIN_READ)
    return 1 << (wanted - 1).bit_length()


class ChunkReader(asyncio.StreamReader):
    """A StreamReader whose ``read()`` returns a view of its own buffer: the
    bytes not yet ``taken``, once more have come.  Bytes fed while the old
    buffer still held some come after those."""

    _area: bytearray
    _start: int  # area[_start:_end]: not taken yet
    _end: int
    _handed: int  # read() handed out area[_start:_handed]
    _fit: int  # the size the buffer takes once it is empty (area_for)
    _receiver: _Receiver | None  # in front of the connection's protocol

    # -- filling ---------------------------------------------------------------

    def _room(self, need: int = MIN_READ) -> memoryview:
        """Where the next bytes go: the free end of the buffer, with at
        least ``need`` bytes.  The buffer's bytes are moved within it, or
        it is replaced, never resized: a view handed out earlier may still
        be held (its bytes were parsed before this read)."""
        if len(self._area) - self._end < need:
            kept = self._end - self._start
            if kept + need <= len(self._area):
                view = memoryview(self._area)
                view[:kept] = view[self._start : self._end]
            else:  # more than it holds: a frame larger than the buffer
                area = bytearray(max(2 * len(self._area), kept + need))
                area[:kept] = memoryview(self._area)[self._start : self._end]
                self._area = area
            self._handed -= self._start
            self._start, self._end = 0, kept
        return memoryview(self._area)[self._end :]

    def _filled(self, nbytes: int) -> None:
        self._end += nbytes
        self._wakeup_waiter()
        if (
            self._transport is not None
            and not self._paused
            and self._end - self._handed > max(2 * self._limit, self._fit)
        ):
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                self._transport = None
            else:
                self._paused = True

    def feed_data(self, data: bytes) -> None:
        # a transport that could not take the receiver: one copy, as before
        if data:
            self._room(len(data))[: len(data)] = data
            self._filled(len(data))

    # -- reading ---------------------------------------------------------------

    async def read(self, n: int = -1) -> bytes | memoryview:
        if self._buffer:
            return await super().read(n)
        if self._exception is not None:
            raise self._exception
        if self._handed == self._end and not self._eof:
            await self._wait_for_data("read")
            if self._buffer:  # fed before the switch finished waiting
                return await super().read(n)
        if self._handed == self._end:
            return b""  # the end of the stream
        self._handed = self._end
        if self._paused:
            self._paused = False
            self._transport.resume_reading()
        return memoryview(self._area)[self._start : self._end]

    def taken(self, nbytes: int) -> None:
        """The caller of the last ``read()`` used its first ``nbytes``; the
        rest (an unfinished frame) comes again with the next."""
        self._start += nbytes
        if self._start == self._end:
            self._start = self._end = self._handed = 0
            if len(self._area) != self._fit:
                self._area = bytearray(self._fit)

    def fit(self, per_message: float) -> None:
        """Events are about ``per_message`` bytes: the buffer takes the size
        for them (area_for) once it is empty."""
        self._fit = area_for(per_message)

    async def readline(self) -> bytes:
        # nats-py reads lines only while it connects: back to a plain reader
        # (the fast engine switches it again at the next chunk)
        self._buffer.extend(memoryview(self._area)[self._start : self._end])
        self._start = self._end = self._handed = 0
        self._give_back()
        self.__class__ = asyncio.StreamReader
        return await asyncio.StreamReader.readline(self)

    def _give_back(self) -> None:
        """The connection's own protocol takes the bytes again."""
        receiver, self._receiver = self._receiver, None
        if receiver is not None and self._transport is not None:
            self._transport.set_protocol(receiver.inner)

    def at_eof(self) -> bool:
        return self._eof and not self._buffer and self._handed == self._end


class _Receiver(asyncio.BufferedProtocol):
    """In front of a connection's StreamReaderProtocol: the socket reads
    into the ChunkReader's buffer; everything else goes to that protocol."""

    def __init__(self, inner: Any, reader: ChunkReader) -> None:
        self.inner = inner
        self.reader = reader

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.reader._room()

    def buffer_updated(self, nbytes: int) -> None:
        self.reader._filled(nbytes)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def take_chunks(reader: object) -> bool:
    """Switch a plain StreamReader to ChunkReader, and the socket to read
    into its buffer (True when it is one now)."""
    if type(reader) is ChunkReader:
        return True
    if type(reader) is not asyncio.StreamReader:
        return False  # a websocket, another reader: left as it is
    if not all(hasattr(reader, name) for name in _NEEDS):
        return False
    reader._area = bytearray(AREA)
    reader._fit = AREA
    reader._start = reader._end = reader._handed = 0
    reader._receiver = None
    reader.__class__ = ChunkReader
    transport = reader._transport
    inner = transport.get_protocol() if transport is not None else None
    if isinstance(inner, asyncio.StreamReaderProtocol) and not transport.is_closing():
        receiver = _Receiver(inner, reader)
        try:
            transport.set_protocol(receiver)
        except (AttributeError, NotImplementedError):
            pass  # bytes come through feed_data, copied once
        else:
            reader._receiver = receiver
    return True
