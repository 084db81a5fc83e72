"""Hand the data path the chunks the socket gave, not copies of them.

asyncio's StreamReader appends every chunk the transport reads to one
bytearray and ``read()`` slices a bytes object out of it again: three copies
of every byte before the data path sees it (with 64 KiB events about as much
CPU as formatting them).  nats-py's read loop takes whatever ``read()``
returns, so for its TCP and TLS connections the fast engine switches the
connection's reader to ``ChunkReader``: the same object, the same state and
flow control, but the chunks queued as they came and returned as they are.

Hand-written because asyncio offers no way to get the transport's bytes
objects out of a StreamReader; it leans on StreamReader's attributes, which
have been the same since Python 3.7, and leaves any reader alone that lacks
one of them.
"""

from __future__ import annotations

import asyncio
from collections import deque

# what ChunkReader uses of StreamReader's insides
_NEEDS = ("_buffer", "_eof", "_exception", "_limit", "_paused", "_transport", "_waiter")


class ChunkReader(asyncio.StreamReader):
    """A StreamReader whose ``read()`` returns the transport's chunks whole.

    Bytes fed while the old buffer still holds some are appended to it, so
    the order stays; once it is empty, chunks queue up.
    """

    _chunks: deque[bytes]
    _queued: int  # bytes in _chunks

    def feed_data(self, data: bytes) -> None:
        if self._buffer or not data:
            super().feed_data(data)
            return
        self._chunks.append(data)
        self._queued += len(data)
        self._wakeup_waiter()
        if self._transport is not None and not self._paused and self._queued > 2 * self._limit:
            try:
                self._transport.pause_reading()
            except NotImplementedError:
                self._transport = None
            else:
                self._paused = True

    async def read(self, n: int = -1) -> bytes:
        if self._buffer:
            return await super().read(n)
        if self._exception is not None:
            raise self._exception
        if not self._chunks and not self._eof:
            await self._wait_for_data("read")
            if self._buffer:  # fed before the switch finished waiting
                return await super().read(n)
        if not self._chunks:
            return b""  # end of the stream
        data = self._chunks.popleft()
        self._queued -= len(data)
        if self._paused and self._queued <= self._limit:
            self._paused = False
            self._transport.resume_reading()
        return data

    async def readline(self) -> bytes:
        # nats-py reads lines only while it connects: back to a plain reader
        # (the fast engine switches it again at the next chunk)
        for chunk in self._chunks:
            self._buffer.extend(chunk)
        self._chunks.clear()
        self._queued = 0
        self.__class__ = asyncio.StreamReader
        return await asyncio.StreamReader.readline(self)

    def at_eof(self) -> bool:
        return self._eof and not self._buffer and not self._chunks


def take_chunks(reader: object) -> bool:
    """Switch a plain StreamReader to ChunkReader (True when it is one now)."""
    if type(reader) is ChunkReader:
        return True
    if type(reader) is not asyncio.StreamReader:
        return False  # a websocket, another reader: left as it is
    if not all(hasattr(reader, name) for name in _NEEDS):
        return False
    reader._chunks = deque()
    reader._queued = 0
    reader.__class__ = ChunkReader
    return True
