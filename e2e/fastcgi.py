"""A minimal FastCGI client, to ask the service directly (without a web server) whether it serves, and
a minimal responder that records what a web server sends."""

import socket
import struct
import threading

VERSION, BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 1, 3, 4, 5, 6
RESPONDER = 1
REQUEST_ID = 1


def _record(record_type: int, content: bytes = b"") -> bytes:
    return struct.pack(">BBHHBx", VERSION, record_type, REQUEST_ID, len(content), 0) + content


def _length(value: bytes) -> bytes:
    return struct.pack(">B", len(value)) if len(value) < 128 else struct.pack(">I", len(value) | 0x80000000)


def _params(params: dict[str, str]) -> bytes:
    encoded = b""
    for name, value in params.items():
        name_bytes, value_bytes = name.encode(), value.encode()
        encoded += _length(name_bytes) + _length(value_bytes) + name_bytes + value_bytes
    return encoded


def _connect(upstream: str, timeout: float) -> socket.socket:
    """`upstream` as nginx's `server` directive takes it: unix:/path or host:port."""
    if upstream.startswith("unix:"):
        connection = socket.socket(socket.AF_UNIX)
        connection.settimeout(timeout)
        connection.connect(upstream.removeprefix("unix:"))
        return connection
    host, _, port = upstream.rpartition(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


def get_status(upstream: str, path: str, timeout: float = 2.0) -> int:
    """The HTTP status the responder gives a GET of `path` (its CGI Status header, 200 if none)."""
    with _connect(upstream, timeout) as connection:
        send_request(connection, path)
        return status_of(read_response(connection))


def send_request(connection: socket.socket, path: str, method: str = "GET", body: bytes = b"",
                 content_length: str | None = None) -> None:
    """A complete request (no FCGI_KEEP_CONN), as nginx sends it: one write, body of declared length
    (`content_length` overrides the CONTENT_LENGTH nginx would give: empty without a body)."""
    declared = content_length if content_length is not None else (str(len(body)) if body else "")
    params = {"REQUEST_METHOD": method, "SCRIPT_NAME": path, "REQUEST_URI": path, "GATEWAY_INTERFACE": "CGI/1.1",
              "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": declared}
    if body:
        params["CONTENT_TYPE"] = "application/json"
    connection.sendall(_record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 0)) + _record(PARAMS, _params(params))
                       + _record(PARAMS) + (_record(STDIN, body) if body else b"") + _record(STDIN))


def read_response(connection: socket.socket) -> bytes:
    """The FCGI_STDOUT content up to FCGI_END_REQUEST."""
    stream, output = connection.makefile("rb"), b""
    while True:
        header = stream.read(8)
        if len(header) < 8:
            raise ConnectionError("connection closed before FCGI_END_REQUEST")
        _, record_type, _, length, padding = struct.unpack(">BBHHBx", header)
        content = stream.read(length + padding)[:length]
        if record_type == STDOUT:
            output += content
        elif record_type == END_REQUEST:
            return output


def status_of(output: bytes) -> int:
    head = output.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    for line in head.split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            return int(value.split()[0])
    return 200


def _decode_params(data: bytes) -> dict[str, str]:
    params, position = {}, 0

    def length() -> int:
        nonlocal position
        if data[position] < 128:
            position += 1
            return data[position - 1]
        position += 4
        return struct.unpack(">I", data[position - 4:position])[0] & 0x7FFFFFFF

    while position < len(data):
        name_length = length()
        value_length = length()
        name = data[position:position + name_length].decode("latin-1")
        position += name_length
        params[name] = data[position:position + value_length].decode("latin-1")
        position += value_length
    return params


class ParamsRecorder:
    """A FastCGI responder on a unix socket that records the params of every request and answers
    200 "ok": to see what a web server configuration really passes, without the service."""

    def __init__(self, socket_path: str):
        self.socket_path = socket_path
        self.requests: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(socket_path)
        self._listener.listen(16)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def upstream(self) -> str:
        return f"unix:{self.socket_path}"

    def stop(self) -> None:
        self._listener.close()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            with connection:
                try:
                    self._answer(connection)
                except (OSError, struct.error):
                    pass

    def _answer(self, connection: socket.socket) -> None:
        stream, params, request_id = connection.makefile("rb"), b"", REQUEST_ID
        while True:
            header = stream.read(8)
            if len(header) < 8:
                return
            _, record_type, request_id, length, padding = struct.unpack(">BBHHBx", header)
            content = stream.read(length + padding)[:length]
            if record_type == PARAMS:
                params += content
            elif record_type == STDIN and not content:
                break
        with self._lock:
            self.requests.append(_decode_params(params))
        body = b"Status: 200 OK\r\nContent-Type: text/plain\r\n\r\nok"
        records = b""
        for record_type, content in ((STDOUT, body), (STDOUT, b""), (END_REQUEST, struct.pack(">IB3x", 0, 0))):
            records += struct.pack(">BBHHBx", VERSION, record_type, request_id, len(content), 0) + content
        connection.sendall(records)
