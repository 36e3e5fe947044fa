"""Servers that never answer: TCP listeners that accept connections and then say nothing (a hostile
or wedged homeserver), and a UDP "nameserver" that reads queries and never replies. They count what
reaches them, so tests can show the service really tried them."""

import selectors
import socket
import struct
import threading


class SilentTCPServers:
    """Listeners on (address, port) pairs; accepted connections are held open and never read."""

    def __init__(self, addresses: list[tuple[str, int]]):
        self._selector = selectors.DefaultSelector()
        self._listeners = []
        self._held: list[socket.socket] = []
        self._lock = threading.Lock()
        self.connections: dict[str, int] = {}
        for address in addresses:
            listener = socket.socket(socket.AF_INET)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(address)
            listener.listen(512)
            listener.setblocking(False)
            self._selector.register(listener, selectors.EVENT_READ)
            self._listeners.append(listener)
        self._running = True
        self._thread = threading.Thread(target=self._accept, name="silent-tcp", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._listeners[0].getsockname()[1]

    def _accept(self) -> None:
        while self._running:
            for key, _ in self._selector.select(timeout=0.1):
                try:
                    connection, _ = key.fileobj.accept()
                except OSError:
                    continue
                address = key.fileobj.getsockname()[0]
                with self._lock:
                    self._held.append(connection)
                    self.connections[address] = self.connections.get(address, 0) + 1

    def total(self) -> int:
        with self._lock:
            return sum(self.connections.values())

    def stop(self) -> None:
        self._running = False
        self._thread.join()
        for item in self._listeners + self._held:
            item.close()


class SilentNameserver:
    """A UDP socket on 127.0.0.1:53 (of whatever network namespace creates it) that reads DNS
    queries and never answers; `queries(name, qtype)` counts them."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 53))
        self._socket.settimeout(0.1)
        self._lock = threading.Lock()
        self._seen: list[tuple[str, int]] = []
        self._running = True
        self._thread = threading.Thread(target=self._read, name="silent-dns", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while self._running:
            try:
                packet = self._socket.recv(4096)
            except (TimeoutError, OSError):
                continue
            question = _question(packet)
            if question is not None:
                with self._lock:
                    self._seen.append(question)

    def queries(self, name: str, qtype: int) -> int:
        with self._lock:
            return sum(1 for seen in self._seen if seen == (name.lower(), qtype))

    def stop(self) -> None:
        self._running = False
        self._thread.join()
        self._socket.close()


def _question(packet: bytes) -> tuple[str, int] | None:
    """The first question's name and type, or None for anything unparsable."""
    labels, offset = [], 12
    try:
        while packet[offset]:
            length = packet[offset]
            labels.append(packet[offset + 1:offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        (qtype,) = struct.unpack(">H", packet[offset + 1:offset + 3])
    except (IndexError, struct.error):
        return None
    return ".".join(labels).lower(), qtype


SRV = 33
