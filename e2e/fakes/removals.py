"""Fake LiveKit SFU for the membership monitor: Twirp `RemoveParticipant` and `DeleteRoom` (AS-MODE.md
B4) on top of the presence fake of fakes/participants.py.

Every call is recorded with its arrival time and whether its server token carried the grant LiveKit
asks for (`roomAdmin` for that room; `roomCreate`). A removed participant, or everyone of a deleted
room, is no longer present. `fail_removals_with` makes both calls fail, to test the retry.
"""

import time
from dataclasses import dataclass

from fakes import protobuf
from fakes.participants import ParticipantSFU, _Handler as _ParticipantHandler, NOT_FOUND_BODY
from fakes.records import matching
from fakes.sfu import _twirp_error

REMOVE_PARTICIPANT_PATH = "/twirp/livekit.RoomService/RemoveParticipant"
DELETE_ROOM_PATH = "/twirp/livekit.RoomService/DeleteRoom"
ROOM, IDENTITY = 1, 2


@dataclass(frozen=True)
class Removal:
    method: str  # "RemoveParticipant" or "DeleteRoom"
    room: str
    identity: str | None
    arrived: float  # time.monotonic()
    wall: float  # time.time()
    authorized: bool
    status: int


class RemovalSFU(ParticipantSFU):
    def __init__(self, api_key: str, api_secret: str):
        super().__init__(api_key, api_secret)
        self._server.RequestHandlerClass = _Handler
        self._removals: list[Removal] = []
        self._removal_failure: int | None = None

    def fail_removals_with(self, status: int | None) -> None:
        with self._lock:
            self._removal_failure = status

    def removals(self, method: str | None = None, identity: str | None = None) -> list[Removal]:
        with self._lock:
            return matching(self._removals, method=method, identity=identity)

    def clear_removals(self) -> None:
        with self._lock:
            self._removals.clear()

    def _remove(self, method: str, body: bytes, authorization: str | None) -> tuple[int, str, bytes]:
        arrived, wall = time.monotonic(), time.time()
        try:
            fields = protobuf.decode(body)
            room = fields[ROOM][0].decode()
            identity = fields[IDENTITY][0].decode() if method == "RemoveParticipant" else None
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            return _twirp_error(400, "malformed", f"undecodable {method} request")
        claims = self._claims(authorization) or {}
        video = claims.get("video", {})
        if method == "RemoveParticipant":
            authorized = video.get("roomAdmin") is True and video.get("room") == room
        else:
            authorized = video.get("roomCreate") is True
        authorized = authorized and claims.get("iss") == self.api_key
        with self._lock:
            failure = self._removal_failure
            if failure is not None:
                status, content_type, payload = _twirp_error(failure, "unavailable", "fake SFU failure")
            elif not authorized:
                status, content_type, payload = _twirp_error(401, "unauthenticated", "invalid token")
            elif method == "RemoveParticipant":
                if (room, identity) in self._present:
                    self._present.discard((room, identity))
                    status, content_type, payload = 200, "application/protobuf", b""
                else:
                    status, content_type, payload = 404, "application/json", NOT_FOUND_BODY
            else:
                self._present = {(r, i) for r, i in self._present if r != room}
                status, content_type, payload = 200, "application/protobuf", b""
            self._removals.append(Removal(method, room, identity, arrived, wall, authorized, status))
        return status, content_type, payload


class _Handler(_ParticipantHandler):
    def do_POST(self):
        methods = {REMOVE_PARTICIPANT_PATH: "RemoveParticipant", DELETE_ROOM_PATH: "DeleteRoom"}
        if self.path not in methods:
            super().do_POST()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, content_type, payload = self.server.fake._remove(methods[self.path], body, self.headers.get("Authorization"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
