"""Fake LiveKit SFU that also knows who is in which room: Twirp `GetParticipant` (contract §6.6) on
top of the CreateRoom fake of fakes/sfu.py.

Presence is set by the test per (room alias, identity). A present participant answers 200 with a
ParticipantInfo; anyone else the Twirp `not_found` error LiveKit gives. Every lookup is recorded
with its arrival time and whether its server token was valid for that room (roomAdmin, §6.2).
"""

import time
from dataclasses import dataclass

from fakes import protobuf
from fakes.records import matching
from fakes.sfu import FakeSFU, _Handler as _CreateRoomHandler, _twirp_error

GET_PARTICIPANT_PATH = "/twirp/livekit.RoomService/GetParticipant"

# RoomParticipantIdentity field numbers.
ROOM, IDENTITY = 1, 2
# ParticipantInfo field numbers, and ParticipantInfo.State.ACTIVE.
INFO_SID, INFO_IDENTITY, INFO_STATE, ACTIVE = 1, 2, 3, 2

NOT_FOUND_BODY = b'{"code":"not_found","msg":"participant not found","meta":{}}'


@dataclass(frozen=True)
class Lookup:
    room: str
    identity: str
    arrived: float  # time.monotonic()
    authorized: bool  # bearer token signed with the API secret, roomAdmin for exactly this room
    status: int


class ParticipantSFU(FakeSFU):
    def __init__(self, api_key: str, api_secret: str):
        super().__init__(api_key, api_secret)
        self._server.RequestHandlerClass = _Handler
        self._present: set[tuple[str, str]] = set()
        self._lookups: list[Lookup] = []
        self._failure: int | None = None

    def set_present(self, room: str, identity: str, present: bool = True) -> None:
        with self._lock:
            if present:
                self._present.add((room, identity))
            else:
                self._present.discard((room, identity))

    def is_present(self, room: str, identity: str) -> bool:
        with self._lock:
            return (room, identity) in self._present

    def fail_lookups_with(self, status: int | None) -> None:
        """Answer GetParticipant with this non-Twirp error status (an intermediary), or normally with None."""
        with self._lock:
            self._failure = status

    def lookups(self, room: str | None = None, identity: str | None = None) -> list[Lookup]:
        with self._lock:
            return matching(self._lookups, room=room, identity=identity)

    def _get_participant(self, body: bytes, authorization: str | None) -> tuple[int, str, bytes]:
        arrived = time.monotonic()
        try:
            fields = protobuf.decode(body)
            room, identity = fields[ROOM][0].decode(), fields[IDENTITY][0].decode()
        except (ValueError, KeyError, IndexError, UnicodeDecodeError):
            return _twirp_error(400, "malformed", "undecodable RoomParticipantIdentity")
        claims = self._claims(authorization) or {}
        video = claims.get("video", {})
        authorized = video.get("roomAdmin") is True and video.get("room") == room and claims.get("iss") == self.api_key
        with self._lock:
            present = (room, identity) in self._present
            failure = self._failure
        if failure is not None:
            status, content_type, payload = failure, "text/plain", b"upstream unavailable"
        elif not authorized:
            status, content_type, payload = _twirp_error(401, "unauthenticated", "invalid token")
        elif present:
            status, content_type = 200, "application/protobuf"
            payload = (protobuf.string_field(INFO_SID, "PA_" + identity[:10]) + protobuf.string_field(INFO_IDENTITY, identity)
                       + protobuf.varint_field(INFO_STATE, ACTIVE))
        else:
            status, content_type, payload = 404, "application/json", NOT_FOUND_BODY
        with self._lock:
            self._lookups.append(Lookup(room, identity, arrived, authorized, status))
        return status, content_type, payload


class _Handler(_CreateRoomHandler):
    def do_POST(self):
        if self.path != GET_PARTICIPANT_PATH:
            super().do_POST()
            return
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        status, content_type, payload = self.server.fake._get_participant(body, self.headers.get("Authorization"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
