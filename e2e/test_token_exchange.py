"""Successful token exchanges (contract §3.4, §3.5, §4, §6.1, §6.5) through every frontend."""

import time

import pytest

import expect
import matrix_client
import oracle
import service as lkjwt
from fakes import sfu as twirp


def exchange(frontend, endpoint, body):
    """POST a token request; returns (response, the interval in which the JWT must have been issued)."""
    before = time.time()
    response = frontend.post_json(endpoint, body)
    return response, (before, time.time())


def assert_token_response(response, peers, issued_between, identity, alias, can_publish=True):
    assert response.status == 200, response.body
    expect.json_endpoint_headers(response)
    assert response.body.endswith(b"}\n")
    document = response.json()
    assert set(document) == {"url", "jwt"}
    assert document["url"] == peers.sfu.url
    oracle.assert_join_token(document["jwt"], key=lkjwt.API_KEY, secret=lkjwt.API_SECRET,
                             identity=identity, alias=alias, issued_between=issued_between,
                             can_publish=can_publish)


def assert_room_created(peers, alias, issued_between):
    """Exactly one CreateRoom for `alias`, protobuf, with the contract's timeouts and a valid
    server API token (§6.2) that may create rooms."""
    [call] = peers.sfu.calls
    assert call.content_type == "application/protobuf"
    assert call.fields == {twirp.NAME: [alias.encode()], twirp.EMPTY_TIMEOUT: [300], twirp.DEPARTURE_TIMEOUT: [20]}
    claims = call.token_claims
    assert claims is not None, f"invalid bearer token {call.authorization!r}"
    assert set(claims) == {"iss", "exp", "nbf", "iat", "video"}, claims
    assert claims["iss"] == lkjwt.API_KEY
    assert claims["video"] == {"roomCreate": True}
    assert int(issued_between[0]) <= claims["iat"] <= issued_between[1]
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + oracle.SERVER_TOKEN_LIFETIME


def test_full_access_user_gets_a_token_and_the_room_is_created(frontend, peers, alice):
    body = matrix_client.get_token_body(alice, room_id="!abc:example.org", slot_id="m.call#ROOM",
                                        member_id="member-7", device_id="PHONE")
    response, issued = exchange(frontend, "/get_token", body)

    identity = oracle.hashed_name(alice.user_id, "PHONE", "member-7")
    alias = oracle.hashed_name("!abc:example.org", "m.call#ROOM")
    assert_token_response(response, peers, issued, identity, alias)
    assert_room_created(peers, alias, issued)
    # The OpenID token went to the user's homeserver, addressed by its server name (§5.1, §5.3).
    [userinfo] = peers.full.userinfo_requests
    assert userinfo.access_token == alice.access_token
    assert userinfo.host == alice.server_name
    assert userinfo.authorization is None


def test_restricted_user_gets_a_token_without_room_creation(frontend, peers, bob):
    body = matrix_client.get_token_body(bob, room_id="!abc:example.org", slot_id="m.call#ROOM")
    response, issued = exchange(frontend, "/get_token", body)

    identity = oracle.hashed_name(bob.user_id, "DEVICE", "member-1")
    # Contract §6.1 rev. 2: restricted users do not publish on this SFU.
    assert_token_response(response, peers, issued, identity, oracle.hashed_name("!abc:example.org", "m.call#ROOM"),
                          can_publish=False)
    assert peers.sfu.calls == []
    assert [r.access_token for r in peers.restricted.userinfo_requests] == [bob.access_token]


@pytest.mark.parametrize("account", ["alice", "bob"])
def test_legacy_endpoint_uses_plain_identity_and_fixed_slot(frontend, peers, request, account):
    account = request.getfixturevalue(account)
    body = matrix_client.legacy_body(account, room="!legacy:example.org", device_id="LAPTOP")
    response, issued = exchange(frontend, "/sfu/get", body)

    alias = oracle.hashed_name("!legacy:example.org", "m.call#ROOM")
    assert_token_response(response, peers, issued, oracle.legacy_identity(account.user_id, "LAPTOP"), alias,
                          can_publish=account.homeserver is peers.full)
    if account.homeserver is peers.full:
        assert_room_created(peers, alias, issued)
    else:
        assert peers.sfu.calls == []


def test_legacy_endpoint_accepts_a_missing_device_id(frontend, peers, bob):
    body = matrix_client.legacy_body(bob)
    del body["device_id"]
    response, issued = exchange(frontend, "/sfu/get", body)
    alias = oracle.hashed_name("!room:example.org", "m.call#ROOM")
    assert_token_response(response, peers, issued, oracle.legacy_identity(bob.user_id, ""), alias, can_publish=False)


@pytest.mark.parametrize("frontend", ["nginx-prefix"], indirect=True)
def test_names_are_hashed_as_canonical_json(frontend, peers, alice):
    """<, >, & and U+2028 stay raw, as in canonical JSON (DIFF-5); a quote and a control character
    are escaped; non-ASCII is UTF-8."""
    room_id, slot_id = "!a<b>&c:exämple.org", "slot\u2028\"x\"\t"
    member_id, device_id = "member<&>", "DEV\x01ICE"
    body = matrix_client.get_token_body(alice, room_id=room_id, slot_id=slot_id,
                                        member_id=member_id, device_id=device_id)
    response, issued = exchange(frontend, "/get_token", body)

    alias = oracle.hashed_name(room_id, slot_id)
    assert_token_response(response, peers, issued, oracle.hashed_name(alice.user_id, device_id, member_id), alias)
    assert_room_created(peers, alias, issued)


@pytest.mark.parametrize("frontend", ["nginx-root"], indirect=True)
def test_access_token_is_form_url_encoded(frontend, peers):
    """Characters with a meaning in a query string reach the homeserver intact (§5.1 step 3)."""
    account = matrix_client.Account(peers.restricted, peers.restricted.user_id("carol"), "a b+c/d=e&f?g%h#i")
    peers.restricted.add_user(account.access_token, "carol")
    response = frontend.post_json("/get_token", matrix_client.get_token_body(account))
    assert response.status == 200, response.body
    assert [r.access_token for r in peers.restricted.userinfo_requests] == [account.access_token]


@pytest.mark.parametrize("frontend", ["nginx-root"], indirect=True)
def test_delay_timeout_without_delay_id_is_no_delegation(frontend, peers, alice):
    """A non-positive delay_timeout with an empty delay_id is not a partial delegation (§3.4 note)."""
    response = frontend.post_json("/get_token", matrix_client.get_token_body(alice, delay_id="", delay_timeout=-5))
    assert response.status == 200, response.body


@pytest.mark.parametrize("frontend", ["nginx-root"], indirect=True)
def test_homeserver_connections_are_reused(frontend, peers, bob):
    """Each worker thread keeps its TLS connection to a homeserver: 50 token requests need at most
    one handshake per thread, not one per request."""
    requests = 50
    for _ in range(requests):
        response = frontend.post_json("/get_token", matrix_client.get_token_body(bob))
        assert response.status == 200, response.body
    assert len(peers.restricted.userinfo_requests) == requests
    assert peers.restricted.tls_handshakes <= lkjwt.THREADS
