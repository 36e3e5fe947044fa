"""A real redis-server on a free port for the job tests, and just enough RESP to look into it."""

import socket
from pathlib import Path

from processes import Process, clean_environment, free_port, wait_until

class RedisError(Exception):
    pass


class RedisConnection:
    def __init__(self, port: int, db: int = 0, timeout: float = 5.0):
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._reader = self._socket.makefile("rb")
        if db:
            self.command("SELECT", db)

    def close(self) -> None:
        self._reader.close()
        self._socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *arguments):
        encoded = [argument if isinstance(argument, bytes) else str(argument).encode() for argument in arguments]
        payload = b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(item), item) for item in encoded)
        self._socket.sendall(payload)
        return self._read()

    def _read(self):
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise RedisError(f"connection closed ({line!r})")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            return None if length < 0 else self._reader.read(length + 2)[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise RedisError(f"unexpected reply {line!r}")


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, nothing persisted, stopped by PID."""

    def __init__(self, directory: Path):
        self.directory = directory / "redis"
        self.directory.mkdir()
        self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
                "--save", "", "--appendonly", "no", "--databases", "64", "--dir", str(self.directory),
                "--daemonize", "no", "--logfile", ""]
        self.process = Process(f"redis-server-{self.port}", argv, clean_environment(), directory)
        self._next_db = 1
        wait_until(lambda: not self.process.running() or self._pings(), f"redis-server answering PING on {self.port}")
        self.process.require_running()

    def _pings(self) -> bool:
        try:
            with RedisConnection(self.port) as connection:
                return connection.command("PING") == "PONG"
        except OSError:
            return False

    def new_database(self) -> int:
        """A database number nobody used yet in this server (each service gets its own)."""
        db = self._next_db
        self._next_db += 1
        with RedisConnection(self.port, db) as connection:
            connection.command("FLUSHDB")
        return db

    def stop(self) -> None:
        self.process.stop()
