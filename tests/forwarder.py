"""A TCP forwarder whose outgoing connections come from another loopback address (127.0.0.2,
127.0.0.3, ...), so that one test process can be two clients with distinct addresses: Linux
gives every connection to 127.0.0.0/8 the source 127.0.0.1 unless the socket binds another."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(1 << 16):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def forwarder(target: tuple[str, int], source_host: str) -> Iterator[str]:
    """Yields "127.0.0.1:PORT": connections there reach ``target`` from ``source_host``."""
    listener = socket.create_server(("127.0.0.1", 0))
    sockets: list[socket.socket] = [listener]

    def accept() -> None:
        while True:
            try:
                inbound, _ = listener.accept()
                outbound = socket.create_connection(target, source_address=(source_host, 0))
            except OSError:
                return  # the listener was closed: the test is over
            sockets.extend((inbound, outbound))
            for a, b in ((inbound, outbound), (outbound, inbound)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        for s in sockets:
            with contextlib.suppress(OSError):
                s.close()
