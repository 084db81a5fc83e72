"""ChunkReader: the socket's chunks reach the data path as they are, in order,
with StreamReader's flow control (over real loopback connections)."""

from __future__ import annotations

import asyncio
import os

from events_audit.engines.chunk_reader import ChunkReader, take_chunks


async def _pair(send: bytes, *, close: bool = True):
    """A reader on a loopback connection whose peer sends ``send``."""
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(send)
        await writer.drain()
        if close:
            writer.close()
        await done.wait()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=64 << 10)
    return reader, writer, server, done


async def _read_all(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while chunk := await reader.read(1 << 16):
        parts.append(chunk)
    return b"".join(parts)


def test_chunks_are_handed_over_as_they_came() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        assert take_chunks(reader) and type(reader) is ChunkReader
        first, second = os.urandom(300_000), os.urandom(10)
        reader.feed_data(first)
        reader.feed_data(second)
        assert await reader.read(1 << 16) is first  # whole, not a copy or a slice
        assert await reader.read(1 << 16) is second
        reader.feed_eof()
        assert await reader.read(1 << 16) == b"" and reader.at_eof()

    asyncio.run(main())


def test_what_the_buffer_held_before_the_switch_comes_first() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(b"a" * 10)
        take_chunks(reader)
        reader.feed_data(b"b" * 10)  # behind the buffered bytes, not before them
        assert await reader.read(4) == b"aaaa"
        reader.feed_data(b"c")
        got = await reader.read(100)
        assert got == b"a" * 6 + b"b" * 10 + b"c"
        reader.feed_data(b"d")
        assert await reader.read(100) == b"d"

    asyncio.run(main())


def test_a_large_stream_arrives_whole_with_the_transport_paused_meanwhile() -> None:
    payload = os.urandom(8 << 20)

    async def main() -> None:
        reader, writer, server, done = await _pair(payload)
        take_chunks(reader)
        await asyncio.sleep(0.3)  # the peer sends more than 2 x limit meanwhile
        assert reader._paused, "reading was not paused past twice the limit"
        assert await _read_all(reader) == payload
        assert not reader._paused and reader.at_eof()
        done.set()
        writer.close()
        server.close()

    asyncio.run(main())


def test_readline_turns_it_back_into_a_plain_reader() -> None:
    async def main() -> None:
        reader, writer, server, done = await _pair(b"INFO {}\r\nPONG\r\nrest", close=False)
        take_chunks(reader)
        await asyncio.sleep(0.1)
        assert await reader.readline() == b"INFO {}\r\n"
        assert type(reader) is asyncio.StreamReader
        assert await reader.readline() == b"PONG\r\n"
        assert take_chunks(reader)
        assert await reader.read(100) == b"rest"
        done.set()
        writer.close()
        server.close()

    asyncio.run(main())


def test_an_error_reaches_the_reader() -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        take_chunks(reader)
        waiting = asyncio.ensure_future(reader.read(10))
        await asyncio.sleep(0)
        reader.set_exception(ConnectionResetError("gone"))
        try:
            await waiting
        except ConnectionResetError:
            return
        raise AssertionError("the error was not raised")

    asyncio.run(main())


def test_other_readers_are_left_alone() -> None:
    class Other(asyncio.StreamReader):
        pass

    async def main() -> None:
        assert not take_chunks(Other())
        assert not take_chunks(None)

    asyncio.run(main())
