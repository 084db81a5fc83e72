"""ChunkReader: the socket reads into the reader's own buffer, and the data
path gets a view of it; what it leaves (an unfinished frame) comes again with
what follows, in order, with StreamReader's flow control, EOF and errors
(over real loopback connections, on asyncio's loop and on uvloop)."""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest
import uvloop

from events_audit.engines.chunk_reader import (
    AREA,
    AREA_MAX,
    ChunkReader,
    _Receiver,
    area_for,
    take_chunks,
)

LOOPS = [
    pytest.param(asyncio.new_event_loop, id="asyncio"),
    pytest.param(uvloop.new_event_loop, id="uvloop"),
]


def _run(new_loop, main) -> None:
    loop = new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


async def _pair(send: bytes, *, close: bool = True, reset_after: float = 0.0):
    """A reader on a loopback connection whose peer sends ``send`` (and
    resets the connection ``reset_after`` seconds later, if given)."""
    done = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(send)
        await writer.drain()
        if reset_after:
            await asyncio.sleep(reset_after)
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()  # linger 0: the peer gets a reset
        elif close:
            writer.close()
        await done.wait()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=64 << 10)
    return reader, writer, server, done


async def _finish(
    writer: asyncio.StreamWriter, server: asyncio.Server, done: asyncio.Event
) -> None:
    done.set()
    writer.close()
    server.close()
    await server.wait_closed()
    await asyncio.sleep(0.01)  # the peer's task ends


async def _read_all(reader: ChunkReader, keep: int = 0) -> bytes:
    """Everything, taking all of each view but its last ``keep`` bytes (an
    unfinished frame's part, given again with the next view)."""
    parts, rest = [], b""
    while True:
        view = await reader.read(1 << 16)
        if not view:  # the end: what was left is no frame's start after all
            return b"".join(parts) + rest
        used = max(len(view) - keep, 0)
        parts.append(bytes(view[:used]))
        rest = bytes(view[used:])
        reader.taken(used)


@pytest.mark.parametrize("new_loop", LOOPS)
def test_the_socket_reads_into_the_reader_s_buffer(new_loop) -> None:
    payload = os.urandom(3 << 20)

    async def main() -> None:
        reader, writer, server, done = await _pair(payload)
        assert take_chunks(reader) and type(reader) is ChunkReader
        receiver = reader._transport.get_protocol()
        assert isinstance(receiver, _Receiver)  # the transport's own reads land in _area
        view = await reader.read(1 << 16)
        assert isinstance(view, memoryview) and view.obj is reader._area
        reader.taken(0)
        assert await _read_all(reader, keep=1000) == payload
        assert reader.at_eof()
        await _finish(writer, server, done)

    _run(new_loop, main)


@pytest.mark.parametrize("new_loop", LOOPS)
def test_what_is_left_comes_again_in_front_of_what_follows(new_loop) -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        assert take_chunks(reader)
        reader.feed_data(b"MSG one")
        view = await reader.read()
        assert bytes(view) == b"MSG one"
        reader.taken(4)  # "one" is an unfinished frame's start
        waiting = asyncio.ensure_future(reader.read())
        await asyncio.sleep(0.01)
        assert not waiting.done(), "nothing new came: read() must wait"
        reader.feed_data(b" two")
        assert bytes(await waiting) == b"one two"
        reader.taken(7)
        reader.feed_eof()
        assert await reader.read() == b"" and reader.at_eof()

    _run(new_loop, main)


@pytest.mark.parametrize("new_loop", LOOPS)
def test_what_the_buffer_held_before_the_switch_comes_first(new_loop) -> None:
    async def main() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(b"a" * 10)
        take_chunks(reader)
        reader.feed_data(b"b" * 10)  # behind the buffered bytes, not before them
        assert await reader.read(4) == b"aaaa"
        got = await reader.read(100)
        assert got == b"a" * 6
        reader.feed_data(b"c")
        view = await reader.read(100)
        assert bytes(view) == b"b" * 10 + b"c"

    _run(new_loop, main)


@pytest.mark.parametrize("new_loop", LOOPS)
def test_a_frame_larger_than_the_buffer_is_made_whole_in_it(new_loop) -> None:
    frame = os.urandom(3 * AREA + 12345)

    async def main() -> None:
        reader, writer, server, done = await _pair(frame + b"next")
        take_chunks(reader)
        while True:  # not whole yet: nothing is taken, the view grows
            view = await reader.read()
            if len(view) >= len(frame):
                break
            reader.taken(0)
        assert bytes(view[: len(frame)]) == frame
        after = bytes(view[len(frame) :])  # what came with it, left to come again
        reader.taken(len(frame))
        assert len(reader._area) >= len(frame)
        assert after + await _read_all(reader) == b"next"
        await _finish(writer, server, done)

    _run(new_loop, main)


@pytest.mark.parametrize("new_loop", LOOPS)
def test_a_large_stream_arrives_whole_with_the_transport_paused_meanwhile(new_loop) -> None:
    payload = os.urandom(16 << 20)

    async def main() -> None:
        reader, writer, server, done = await _pair(payload)
        take_chunks(reader)
        await asyncio.sleep(0.3)  # the peer sends more than the reader holds meanwhile
        assert reader._paused, "reading was not paused"
        assert reader._end - reader._handed <= AREA + len(reader._area), "it read on while paused"
        assert await _read_all(reader, keep=777) == payload
        assert not reader._paused and reader.at_eof()
        await _finish(writer, server, done)

    _run(new_loop, main)


@pytest.mark.parametrize("new_loop", LOOPS)
def test_readline_turns_it_back_into_a_plain_reader(new_loop) -> None:
    async def main() -> None:
        reader, writer, server, done = await _pair(b"INFO {}\r\nPONG\r\nrest", close=False)
        inner = reader._transport.get_protocol()
        take_chunks(reader)
        await asyncio.sleep(0.1)
        assert await reader.readline() == b"INFO {}\r\n"
        assert type(reader) is asyncio.StreamReader
        assert reader._transport.get_protocol() is inner  # its own protocol reads again
        assert await reader.readline() == b"PONG\r\n"
        assert take_chunks(reader)
        assert bytes(await reader.read(100)) == b"rest"
        await _finish(writer, server, done)

    _run(new_loop, main)


@pytest.mark.parametrize("new_loop", LOOPS)
def test_an_error_reaches_the_reader(new_loop) -> None:
    async def main() -> None:
        reader, writer, server, done = await _pair(b"x", reset_after=0.2)
        take_chunks(reader)
        assert bytes(await reader.read(10)) == b"x"
        reader.taken(0)
        with pytest.raises(ConnectionResetError):
            await reader.read(10)  # waits, then the reset comes through the receiver
        await _finish(writer, server, done)

    _run(new_loop, main)


def test_other_readers_are_left_alone() -> None:
    class Other(asyncio.StreamReader):
        pass

    async def main() -> None:
        assert not take_chunks(Other())
        assert not take_chunks(None)

    asyncio.run(main())


def test_the_buffer_follows_the_size_of_the_events() -> None:
    assert area_for(300) == area_for(16 << 10) == AREA  # small events: reads as before
    assert area_for(64 << 10) == area_for(256 << 10) == AREA_MAX  # room for several
    assert area_for(1 << 20) == 2 << 20  # always room for one and a read
    assert area_for(40_000) == area_for(41_000)  # a moving average changes nothing

    async def main() -> None:
        reader = asyncio.StreamReader()
        take_chunks(reader)
        reader.feed_data(b"x" * 100)
        view = await reader.read()
        reader.fit(64 << 10)
        reader.taken(50)  # not empty yet: kept as it is
        assert len(reader._area) == AREA
        reader.taken(50)
        assert len(reader._area) == AREA_MAX and view.obj is not reader._area
        reader.feed_data(b"y")
        reader.fit(100)
        reader.taken(len(await reader.read()))
        assert len(reader._area) == AREA  # back to the small one

    asyncio.run(main())
