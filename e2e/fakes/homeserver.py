"""Fake Matrix homeserver: the federation OpenID userinfo endpoint, over HTTPS, scriptable per token.

It counts userinfo requests and TLS handshakes, so that tests can see whether the service reused its
connections and whether a request got past certificate verification at all.
"""

import json
import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

USERINFO_PATH = "/_matrix/federation/v1/openid/userinfo"
CLIENT_WELL_KNOWN_PATH = "/.well-known/matrix/client"


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(status: int, document: dict, delay: float = 0.0) -> Reply:
    return Reply(status, json.dumps(document).encode(), delay=delay)


# What Synapse answers for a token it does not know.
UNKNOWN_TOKEN = json_reply(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Access token unknown or expired"})


@dataclass(frozen=True)
class UserinfoRequest:
    access_token: str
    host: str | None
    authorization: str | None


class FakeHomeserver:
    def __init__(self, cert_file: str, key_file: str):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        self._server = TLSServer(("127.0.0.1", 0), _Handler, context, self)
        self._lock = threading.Lock()
        self._replies: dict[str, Reply] = {}
        self._requests: list[UserinfoRequest] = []
        self._handshakes = 0
        # What /.well-known/matrix/client answers (None: 404), and how often it was asked.
        self.client_well_known: Reply | None = None
        self._client_well_known_requests = 0
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"homeserver-{self.port}",
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def server_name(self) -> str:
        """An IP literal with port: the service connects to it directly (contract §5.3 step 1)."""
        return f"127.0.0.1:{self.port}"

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    def add_user(self, access_token: str, localpart: str, delay: float = 0.0) -> str:
        """Accept `access_token` as belonging to @localpart on this server; returns the user ID."""
        user_id = self.user_id(localpart)
        self.script(access_token, json_reply(200, {"sub": user_id}, delay=delay))
        return user_id

    def script(self, access_token: str, reply: Reply) -> None:
        with self._lock:
            self._replies[access_token] = reply

    @property
    def userinfo_requests(self) -> list[UserinfoRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def tls_handshakes(self) -> int:
        """Completed TLS handshakes, i.e. connections the service opened and got through."""
        with self._lock:
            return self._handshakes

    @property
    def client_well_known_requests(self) -> int:
        with self._lock:
            return self._client_well_known_requests

    def reset_counters(self) -> None:
        with self._lock:
            self._requests.clear()
            self._handshakes = 0
            self._client_well_known_requests = 0
            self.client_well_known = None

    def start(self) -> "FakeHomeserver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record_handshake(self) -> None:
        with self._lock:
            self._handshakes += 1

    def _client_well_known(self) -> Reply:
        with self._lock:
            self._client_well_known_requests += 1
            return self.client_well_known or json_reply(404, {"errcode": "M_NOT_FOUND", "error": "Not found"})

    def _userinfo(self, request: UserinfoRequest) -> Reply:
        with self._lock:
            self._requests.append(request)
            return self._replies.get(request.access_token, UNKNOWN_TOKEN)


class TLSServer(ThreadingHTTPServer):
    """HTTPS for a fake: handshakes in the connection's own thread, each completed one reported to
    `fake._record_handshake()`."""
    daemon_threads = True
    # A scripted slow reply must not hold up shutdown.
    block_on_close = False

    def __init__(self, address, handler, context: ssl.SSLContext, fake: FakeHomeserver):
        self.context = context
        self.fake = fake
        super().__init__(address, handler)

    def get_request(self):
        connection, address = self.socket.accept()
        # The handshake happens in the connection's own thread (finish_request), so that a client
        # that stalls or fails it cannot block the accept loop.
        return self.context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False), address

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            request.do_handshake()
        except (ssl.SSLError, OSError):
            return  # e.g. the service rejected our self-signed certificate
        request.settimeout(None)
        self.fake._record_handshake()
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        # Clients hanging up (the service's timeout, a rejected certificate) are part of the tests.
        pass


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections open, so that the service can (and must) reuse them.
    protocol_version = "HTTP/1.1"
    # Nagle off all the same: a delayed body (`Reply.delay`) or a caller writing in parts must not
    # wait for the delayed ACK (40 ms per request).
    disable_nagle_algorithm = True

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path == CLIENT_WELL_KNOWN_PATH:
            self._send(self.server.fake._client_well_known())
            return
        if url.path != USERINFO_PATH:
            self._send(json_reply(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}))
            return
        token = parse_qs(url.query).get("access_token", [""])[0]
        reply = self.server.fake._userinfo(
            UserinfoRequest(token, self.headers.get("Host"), self.headers.get("Authorization")))
        if reply.delay:
            time.sleep(reply.delay)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers:
            self.send_header(name, value)
        # Head and body in one write, so in one TLS record, as a homeserver sends a small answer
        # (Twisted's TLS layer gathers Synapse's small writes; so does nginx in front of it). Two
        # writes made the service read two records, four reads instead of two, per answer.
        self._headers_buffer.append(b"\r\n" + reply.body)
        self.flush_headers()

    def log_message(self, format, *args):
        pass
