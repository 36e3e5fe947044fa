"""A homeserver as the discovery tests need it: HTTPS on a chosen address, serving
`/.well-known/matrix/server` (scriptable) and the federation userinfo endpoint, recording the Host
header and TLS server name of every request so tests can check what the service presented.
"""

import json
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from fakes.homeserver import TLSServer

WELL_KNOWN_PATH = "/.well-known/matrix/server"
USERINFO_PATH = "/_matrix/federation/v1/openid/userinfo"


@dataclass(frozen=True)
class Seen:
    path: str
    host: str | None
    sni: str | None


class FederationHost:
    """One HTTPS listener. `users` maps OpenID access tokens to user IDs; `well_known` is the JSON
    document served at the well-known path (None: 404)."""

    def __init__(self, address: tuple[str, int], cert_file: str, key_file: str, *,
                 well_known: dict | None = None, users: dict[str, str] | None = None):
        self.well_known = well_known
        self.users = dict(users or {})
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        context.sni_callback = self._remember_sni
        self._sni = threading.local()
        self._server = TLSServer(address, _Handler, context, self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "FederationHost":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def seen(self, path: str) -> list[Seen]:
        with self._lock:
            return [entry for entry in self._seen if entry.path == path]

    def _remember_sni(self, connection, server_name, context):
        connection.sni = server_name

    def _record_handshake(self) -> None:
        pass  # only the requests matter here

    def _record(self, entry: Seen) -> None:
        with self._lock:
            self._seen.append(entry)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, the body would wait for a delayed ACK.
    disable_nagle_algorithm = True

    def do_GET(self):
        fake: FederationHost = self.server.fake
        url = urlsplit(self.path)
        fake._record(Seen(url.path, self.headers.get("Host"), getattr(self.connection, "sni", None)))
        if url.path == WELL_KNOWN_PATH and fake.well_known is not None:
            self._send(200, fake.well_known)
        elif url.path == USERINFO_PATH:
            token = parse_qs(url.query).get("access_token", [""])[0]
            user = fake.users.get(token)
            if user is None:
                self._send(401, {"errcode": "M_UNKNOWN_TOKEN", "error": "Unknown token"})
            else:
                self._send(200, {"sub": user})
        else:
            self._send(404, {"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"})

    def _send(self, status: int, document: dict) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass
