"""The remote token flow between two real Synapse 1.163.2 homeservers federating over loopback TLS
(AS-MODE.md B2 point 7, AS-MODE-NOTES §2.10): a user of B asks B for a token on A's SFU; B's
service checks B's view of the room and relays through B's `fed_proxy`; Synapse B signs the
federation request, Synapse A forwards it to A's service, which checks A's view and mints the
token. Each homeserver has its own lkjwt-fcgi and fake SFU; nothing else is scripted.
"""

import secrets
import time

import pytest

import appservice
import expect
import oracle
from appservice import CLIENT_PREFIXES
from processes import wait_until
from tls import self_signed_certificate

pytestmark = pytest.mark.skipif(appservice.as_mode_missing_reason() is not None,
                                reason=str(appservice.as_mode_missing_reason()))


@pytest.fixture(scope="module")
def homeservers(tmp_path_factory):
    directory = tmp_path_factory.mktemp("federation")
    tls = self_signed_certificate(directory)
    started = []
    try:
        for name in ("a", "b"):
            started.append(appservice.start_stack(directory, name=name, tls=tls))
        yield tuple(started)
    finally:
        alive = {stack.synapse.name: stack.service.process.running() for stack in started}
        for stack in reversed(started):
            stack.stop()
    assert all(alive.values()), alive


@pytest.fixture(scope="module")
def shared_room(homeservers):
    """A room of A that bob of B joined over federation; both servers see both members."""
    a, b = homeservers
    carol, bob = a.synapse.register(), b.synapse.register()
    room = carol.create_room()
    carol.invite(room, bob.user_id)
    wait_until(lambda: bob.request("POST", f"/_matrix/client/v3/join/{room}", {}).status == 200,
               "bob joining over federation", timeout=60)
    members_path = f"/_matrix/client/v3/rooms/{room}/joined_members"
    wait_until(lambda: bob.user_id in carol.call("GET", members_path)["joined"], "A seeing bob joined", timeout=30)
    return carol, bob, room


def remote_request(a, room: str, **overrides) -> dict:
    return {"server_name": a.synapse.server_name, "url": a.sfu.url, "room_id": room,
            "slot_id": "m.call#" + secrets.token_hex(4), "member_id": "member-" + secrets.token_hex(4), **overrides}


@pytest.mark.parametrize("version", CLIENT_PREFIXES)
def test_remote_user_gets_a_token_from_the_destination_service(homeservers, shared_room, version):
    a, b = homeservers
    _, bob, room = shared_room
    body = remote_request(a, room)
    alias = oracle.hashed_name(room, body["slot_id"])
    started = time.time()
    response = bob.request("POST", CLIENT_PREFIXES[version] + "/rtc/livekit/get_token", body)
    assert response.status == 200, (response.body, b.service_log()[-3000:])
    assert set(response.json()) == {"jwt"}
    claims = a.claims(response.json()["jwt"])
    assert claims["sub"] == claims["identity"] == oracle.hashed_name(bob.user_id, body["member_id"])
    assert int(started) <= claims["iat"] <= time.time()
    # Federated participants never publish (#222); A's SFU has the room (#228), B's was not asked.
    assert claims["video"] == {"roomJoin": True, "room": alias, "canPublish": False, "canSubscribe": True,
                               "canUpdateOwnMetadata": False}
    assert [call.name for call in a.sfu.calls if call.fields and call.name == alias] == [alias]
    assert not any(call.fields and call.name == alias for call in b.sfu.calls)


def test_url_the_destination_rejects(homeservers, shared_room):
    a, _ = homeservers
    _, bob, room = shared_room
    body = remote_request(a, room, url="wss://elsewhere.example.org")
    response = bob.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body)
    expect.matrix_error(response, 400, "M_INVALID_PARAM", "The destination homeserver rejected the specified `url`",
                        cors=False)


def test_target_server_not_in_the_room(homeservers):
    """B's service refuses before relaying: A is not in this room of B."""
    a, b = homeservers
    dave = b.synapse.register()
    room = dave.create_room()
    response = dave.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", remote_request(a, room))
    expect.matrix_error(response, 403, "M_FORBIDDEN", "The target server is not joined to the room", cors=False)
