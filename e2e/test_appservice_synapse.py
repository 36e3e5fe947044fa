"""Application-service mode against a real Synapse 1.163.2 (AS-MODE.md B2, B3; AS-MODE-NOTES §5):
clients call their homeserver, Synapse forwards to nginx (the shipped application-service snippet)
and nginx to the service. Only the SFU is a fake.
"""

import re
import secrets
import time

import pytest

import appservice
import expect
import oracle
import synapse
from appservice import CLIENT_PREFIXES, FEDERATION_PREFIXES
from processes import wait_until

pytestmark = pytest.mark.skipif(appservice.as_mode_missing_reason() is not None,
                                reason=str(appservice.as_mode_missing_reason()))

URL_MISMATCH = "The request `url` does not match this service's LiveKit URL"
NOT_A_MEMBER = "The requesting user is not a member of the room"
DELAY = 8000  # ms: restarts every 6.4 s, so a restart late by a loaded machine is not a missed one


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = appservice.start_stack(tmp_path_factory.mktemp("appservice"))
    yield started
    still_running = started.service.process.running()
    started.stop()
    assert still_running, f"the service died:\n{started.service_log()[-4000:]}"
    assert started.service.process.popen.returncode == 0, started.service_log()[-4000:]


@pytest.fixture
def alice(stack) -> synapse.User:
    return stack.synapse.register()


@pytest.fixture
def room(alice) -> str:
    return alice.create_room()


def token_request(stack, room_id: str, **overrides) -> dict:
    return {"url": stack.sfu.url, "room_id": room_id, "slot_id": "m.call#" + secrets.token_hex(4),
            "member_id": "member-" + secrets.token_hex(4), **overrides}


def creations(stack, alias: str) -> int:
    return sum(1 for call in stack.sfu.calls if call.fields and call.name == alias)


@pytest.mark.parametrize("version", CLIENT_PREFIXES)
def test_joined_user_gets_a_token_through_synapse(stack, alice, room, version):
    body = token_request(stack, room)
    alias = oracle.hashed_name(body["room_id"], body["slot_id"])
    started = time.time()
    response = alice.request("POST", CLIENT_PREFIXES[version] + "/rtc/livekit/get_token", body)
    assert response.status == 200, response.body
    document = response.json()
    assert set(document) == {"jwt"}
    claims = stack.claims(document["jwt"])
    identity = oracle.hashed_name(alice.user_id, body["member_id"])
    assert claims["sub"] == claims["identity"] == identity
    assert int(started) <= claims["iat"] <= time.time() and claims["exp"] == claims["iat"] + 3600
    assert claims["video"] == {"roomJoin": True, "room": alias, "canPublish": True, "canSubscribe": True,
                               "canUpdateOwnMetadata": False}
    assert creations(stack, alias) == 1


def test_user_not_in_the_room_is_refused(stack, room):
    outsider = stack.synapse.register()
    body = token_request(stack, room)
    response = outsider.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body)
    expect.matrix_error(response, 403, "M_FORBIDDEN", NOT_A_MEMBER, cors=False)
    assert creations(stack, oracle.hashed_name(room, body["slot_id"])) == 0


def test_user_who_left_the_room_is_refused(stack, alice, room):
    member = stack.synapse.register()
    alice.invite(room, member.user_id)
    member.join(room)
    body = token_request(stack, room)
    assert member.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body).status == 200
    member.leave(room)
    response = member.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body)
    expect.matrix_error(response, 403, "M_FORBIDDEN", NOT_A_MEMBER, cors=False)


def test_client_discovers_the_url_the_service_accepts(stack, alice, room):
    """README "How clients find it": Synapse's `matrix_rtc.transports`, verbatim (MSC4143)."""
    transports = alice.call("GET", "/_matrix/client/unstable/org.matrix.msc4143/rtc/transports")["rtc_transports"]
    [livekit] = [transport for transport in transports if transport["type"] == "livekit"]
    body = token_request(stack, room, url=livekit["url"])
    assert alice.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body).status == 200


@pytest.mark.parametrize("version", CLIENT_PREFIXES)
def test_wrong_url_is_refused(stack, alice, room, version):
    body = token_request(stack, room, url="wss://elsewhere.example.org")
    response = alice.request("POST", CLIENT_PREFIXES[version] + "/rtc/livekit/get_token", body)
    expect.matrix_error(response, 400, "M_INVALID_PARAM", URL_MISMATCH, cors=False)
    assert creations(stack, oracle.hashed_name(room, body["slot_id"])) == 0


def test_old_member_object_is_not_json(stack, alice, room):
    """The request shape before MSC4195's flat `member_id` (what upstream's older tests send)."""
    body = token_request(stack, room)
    del body["member_id"]
    body["member"] = {"id": "member-1", "claimed_device_id": alice.device_id}
    response = alice.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body)
    expect.matrix_error(response, 400, "M_NOT_JSON", expect.NOT_JSON, cors=False)


def test_synapse_answers_options_and_refuses_unauthenticated_clients(stack):
    """What the service never sees: Synapse's own answers in front of it."""
    response = stack.synapse.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", {})
    assert (response.status, response.json()["errcode"]) == (401, "M_MISSING_TOKEN")
    assert stack.synapse.request("OPTIONS", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token").status == 204


def test_delayed_leave_is_delegated_kept_alive_and_sent_through_synapse(stack, alice, room):
    """AS-MODE B3 end to end: Synapse schedules the leave, the service restarts it with the as_token
    while the SFU says the member is there, and sends it when the member leaves."""
    state_key = alice.call_member_key()
    alice.set_state(room, synapse.CALL_MEMBER, state_key, {"application": "m.call", "call_id": ""})
    delay_id = alice.schedule_state(room, synapse.CALL_MEMBER, state_key, {}, DELAY)
    body = token_request(stack, room)
    alias = oracle.hashed_name(room, body["slot_id"])
    identity = oracle.hashed_name(alice.user_id, body["member_id"])
    assert alice.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body).status == 200
    response = alice.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/delegate_delayed_leave",
                             {**body, "delay_id": delay_id})
    assert (response.status, response.json()) == (200, {}), response.body

    stack.sfu.set_present(alias, identity)
    joined_at = time.time()
    stack.webhooks().joined(alias, identity)
    # Without restarts the leave would have been sent DELAY after it was scheduled; wait well past
    # that and past the first 80 % restart after the one that participant_joined triggers at once.
    time.sleep(DELAY / 1000 * 1.5)
    pending = alice.delayed_event(delay_id)
    assert pending is not None, f"the leave was sent while the member was there:\n{stack.service_log()[-3000:]}"
    assert pending["delayed_since_ts"] / 1000 >= joined_at + 0.8 * DELAY / 1000 - 1.0, (pending, joined_at)
    assert alice.state(room, synapse.CALL_MEMBER, state_key) != {}

    stack.sfu.set_present(alias, identity, False)
    left_at = time.monotonic()
    stack.webhooks().left(alias, identity)
    wait_until(lambda: alice.state(room, synapse.CALL_MEMBER, state_key) == {}, "the leave event in the room",
               timeout=5.0)
    assert time.monotonic() - left_at < 5.0
    assert alice.delayed_event(delay_id) is None


def test_unknown_delay_id_is_refused(stack, alice, room):
    body = {**token_request(stack, room), "delay_id": "syd_" + secrets.token_hex(8)}
    response = alice.request("POST", CLIENT_PREFIXES["unstable"] + "/rtc/livekit/delegate_delayed_leave", body)
    expect.matrix_error(response, 400, "M_INVALID_PARAM", "Unknown `delay_id`", cors=False)


def test_someone_elses_delay_id_is_unknown(stack, alice, room):
    """Synapse shows a delayed event only to its owner: the look-up as another user finds nothing."""
    delay_id = alice.schedule_state(room, synapse.CALL_MEMBER, alice.call_member_key(), {}, 60_000)
    member = stack.synapse.register()
    alice.invite(room, member.user_id)
    member.join(room)
    body = {**token_request(stack, room), "delay_id": delay_id}
    response = member.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/delegate_delayed_leave", body)
    expect.matrix_error(response, 400, "M_INVALID_PARAM", "Unknown `delay_id`", cors=False)
    assert alice.delayed_event(delay_id) is not None


# Directly at the service's application-service mount, without Synapse.

def test_missing_and_wrong_hs_token(stack, alice, room):
    path = CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token"
    headers = {"X-Matrix-User-Identifier": alice.user_id}
    response = stack.direct("POST", path, token_request(stack, room), headers=headers)
    expect.matrix_error(response, 401, "M_UNAUTHORIZED", "Missing homeserver access token", cors=False)
    response = stack.direct("POST", path, token_request(stack, room),
                            headers={**headers, "Authorization": "Bearer " + stack.as_token})
    expect.matrix_error(response, 403, "M_FORBIDDEN", "Unrecognised homeserver access token", cors=False)


def test_ping(stack):
    response = stack.direct("POST", "/_matrix/app/v1/ping", {}, headers={"Authorization": "Bearer " + stack.hs_token})
    assert (response.status, response.json()) == (200, {})
    response = stack.direct("POST", "/_matrix/app/v1/ping", {})
    expect.matrix_error(response, 401, "M_UNAUTHORIZED", "Missing homeserver access token", cors=False)


@pytest.mark.parametrize("version", FEDERATION_PREFIXES)
def test_federation_user_not_of_the_origin_server_is_refused(stack, room, version):
    body = {**token_request(stack, room), "user_id": "@mallory:evil.example.org"}
    response = stack.direct("POST", FEDERATION_PREFIXES[version] + "/rtc/livekit/get_token", body,
                            headers={"Authorization": "Bearer " + stack.hs_token,
                                     "X-Matrix-Origin": "origin.example.org"})
    expect.matrix_error(response, 403, "M_FORBIDDEN", "The user_id does not belong to the origin server", cors=False)


def test_printed_registration_is_what_synapse_needs(stack):
    """AS-MODE B1: the keys Synapse 1.163 really reads (AS-MODE-NOTES §5.3), fresh tokens each time."""
    registration = stack.registration
    assert registration["io.element.msc4512.proxy_prefix"] == "rtc/livekit"
    assert registration["io.element.msc4512.proxy_url"] == stack.appservice_nginx.base_url
    assert registration["io.element.msc4502.scopes"] == [synapse.IS_JOINED_SCOPE]
    assert registration["url"] is None
    [users] = registration["namespaces"]["users"]
    assert users["exclusive"] is False
    # Exactly this server's users (Synapse matches with Python's re, from the start).
    assert re.match(users["regex"], f"@alice:{stack.synapse.server_name}")
    assert not re.match(users["regex"], "@alice:example.org")
    assert not re.match(users["regex"], f"@alice:{stack.synapse.server_name}0")
    assert len({registration["as_token"], registration["hs_token"]}) == 2
    again = appservice.print_registration(stack.synapse.server_name, stack.appservice_nginx.base_url)
    assert registration["as_token"] not in again and registration["hs_token"] not in again
    # That this Synapse loaded it, the tests through Synapse show; the tokens stay out of the log.
    log = stack.service_log()
    assert stack.hs_token not in log and stack.as_token not in log
