"""Fake LiveKit SFU: the Twirp RoomService CreateRoom call over plain HTTP, protobuf encoded.

It checks the server API token (contract §6.2) and records every call, decoded (§6.5).
"""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import oracle
from fakes import protobuf

CREATE_ROOM_PATH = "/twirp/livekit.RoomService/CreateRoom"

# CreateRoomRequest field numbers.
NAME, EMPTY_TIMEOUT, MAX_PARTICIPANTS, DEPARTURE_TIMEOUT = 1, 2, 3, 10
# Room field numbers.
ROOM_SID, ROOM_NAME, ROOM_CREATION_TIME = 1, 2, 5


@dataclass(frozen=True)
class CreateRoomCall:
    body: bytes
    fields: dict[int, list]  # empty when the body is not valid protobuf
    content_type: str | None
    authorization: str | None
    token_claims: dict | None  # None: missing or invalid bearer token

    @property
    def name(self) -> str:
        return self.fields[NAME][0].decode()


class FakeSFU:
    def __init__(self, api_key: str, api_secret: str):
        self.api_key = api_key
        self.api_secret = api_secret
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self
        self._lock = threading.Lock()
        self._calls: list[CreateRoomCall] = []
        self._failure_status: int | None = None
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"sfu-{self.port}", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The LIVEKIT_URL clients get; the service derives http://… for Twirp from it (§6.4)."""
        return f"ws://127.0.0.1:{self.port}"

    @property
    def calls(self) -> list[CreateRoomCall]:
        with self._lock:
            return list(self._calls)

    def fail_with(self, status: int | None) -> None:
        """Answer CreateRoom with this HTTP status (a Twirp error), or normally again with None."""
        with self._lock:
            self._failure_status = status

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
            self._failure_status = None

    def start(self) -> "FakeSFU":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _create_room(self, body: bytes, content_type: str | None, authorization: str | None) -> tuple[int, str, bytes]:
        try:
            fields = protobuf.decode(body)
        except ValueError:
            fields = {}
        call = CreateRoomCall(body, fields, content_type, authorization, self._claims(authorization))
        with self._lock:
            self._calls.append(call)
            failure_status = self._failure_status
        if failure_status is not None:
            return _twirp_error(failure_status, "internal", "fake SFU failure")
        if NAME not in fields:
            return _twirp_error(400, "malformed", "undecodable CreateRoomRequest")
        if call.token_claims is None or call.token_claims.get("video", {}).get("roomCreate") is not True:
            return _twirp_error(401, "unauthenticated", "invalid token")
        room = (protobuf.string_field(ROOM_SID, "RM_fake" + call.name[:8])
                + protobuf.string_field(ROOM_NAME, call.name)
                + protobuf.varint_field(ROOM_CREATION_TIME, int(time.time())))
        return 200, "application/protobuf", room

    def _claims(self, authorization: str | None) -> dict | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        try:
            return oracle.verified_claims(authorization.removeprefix("Bearer "), self.api_secret)
        except (AssertionError, ValueError):
            return None


def _twirp_error(status: int, code: str, message: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"code": code, "msg": message}).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, the body would wait for the delayed
    # ACK of the headers (40 ms per request).
    disable_nagle_algorithm = True

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path != CREATE_ROOM_PATH:
            status, content_type, payload = _twirp_error(404, "bad_route", f"no handler for {self.path}")
        else:
            status, content_type, payload = self.server.fake._create_room(
                body, self.headers.get("Content-Type"), self.headers.get("Authorization"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):
        pass
