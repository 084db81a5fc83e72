"""A TCP proxy on loopback for the fault tests: it can cut the connections
that pass it (both sides see them close) or black-hole them (nothing is
forwarded or read any more, nothing closes: a NAT or firewall that lost its
state, a frozen host), while new connections pass."""

from __future__ import annotations

import socket
import threading
import time


class _Pair:
    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client, self.upstream = client, upstream
        self.closed = False
        self.frozen = threading.Event()

    def close(self) -> None:
        self.closed = True
        for sock in (self.client, self.upstream):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target`` (host, port)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.pairs: list[_Pair] = []
        self.frozen: list[_Pair] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            pair = _Pair(client, upstream)
            with self.lock:
                self.pairs.append(pair)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        while not pair.closed and not pair.frozen.is_set():
            try:
                data = src.recv(65536)
            except OSError:
                break
            if not data:
                break
            if pair.frozen.is_set():
                break  # a black hole drops what it got
            try:
                dst.sendall(data)
            except OSError:
                break
        if pair.frozen.is_set():
            while not pair.closed:  # read no more, forward no more, close nothing
                time.sleep(0.5)
            return
        pair.close()

    def cut(self) -> int:
        """Close every connection passing now; returns how many."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.close()
        return len(pairs)

    def black_hole(self) -> int:
        """Stop forwarding (and reading) on every connection passing now,
        without closing them; returns how many."""
        with self.lock:
            pairs, self.pairs = self.pairs, []
        for pair in pairs:
            pair.frozen.set()
        self.frozen.extend(pairs)  # closed with the proxy
        return len(pairs)

    def close(self) -> None:
        self.listener.close()
        self.cut()
        for pair in self.frozen:
            pair.close()
