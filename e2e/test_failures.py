"""Token requests that must fail: OpenID verification (contract §5.1), claimed user (§3.4 step 6),
delegation policy (§3.4 step 8) and room creation (§6.5)."""

import time

import pytest

import expect
import matrix_client
from fakes.homeserver import Reply, json_reply
from processes import free_port


def test_claimed_user_mismatch_is_unauthorized(frontend, peers, alice):
    body = matrix_client.get_token_body(alice)
    body["member"]["claimed_user_id"] = peers.full.user_id("mallory")
    response = frontend.post_json("/get_token", body)
    expect.matrix_error(response, 401, "M_UNAUTHORIZED", expect.UNAUTHORIZED)
    assert len(peers.full.userinfo_requests) == 1
    assert peers.sfu.calls == []


def test_unknown_openid_token_is_unauthorized(frontend, peers, alice):
    body = matrix_client.get_token_body(alice)
    body["openid_token"]["access_token"] = "not-a-token-the-homeserver-issued"
    response = frontend.post_json("/get_token", body)
    expect.matrix_error(response, 401, "M_UNAUTHORIZED", expect.UNAUTHORIZED)
    assert [r.access_token for r in peers.full.userinfo_requests] == ["not-a-token-the-homeserver-issued"]
    assert peers.sfu.calls == []


# Homeserver answers that must not be taken as a verified user (§5.1 steps 5–7).
BAD_USERINFO = [
    pytest.param(lambda hs: json_reply(200, {"sub": "@alice:evil.example.org"}), id="sub-of-another-server"),
    pytest.param(lambda hs: json_reply(200, {"sub": f"@alice:{hs.server_name}0"}), id="sub-server-name-prefix"),
    pytest.param(lambda hs: json_reply(200, {"sub": "alice"}), id="sub-without-server-name"),
    pytest.param(lambda hs: json_reply(200, {"sub": 42}), id="sub-not-a-string"),
    pytest.param(lambda hs: json_reply(200, {"user_id": hs.user_id("alice")}), id="no-sub"),
    pytest.param(lambda hs: Reply(200, b"<html>It works!</html>", "text/html"), id="not-json"),
    pytest.param(lambda hs: json_reply(500, {"sub": hs.user_id("alice")}), id="server-error"),
]


@pytest.mark.parametrize("endpoint, body_for", [("/get_token", matrix_client.get_token_body),
                                                ("/sfu/get", matrix_client.legacy_body)], ids=["get_token", "sfu-get"])
@pytest.mark.parametrize("reply", BAD_USERINFO)
def test_unacceptable_userinfo_answer_is_unauthorized(frontend, peers, alice, endpoint, body_for, reply):
    peers.full.script(alice.access_token, reply(peers.full))
    response = frontend.post_json(endpoint, body_for(alice))
    expect.matrix_error(response, 401, "M_UNAUTHORIZED", expect.UNAUTHORIZED)
    assert peers.sfu.calls == []


@pytest.mark.parametrize("frontend", ["nginx-root", "caddy-prefix", "cgi"], indirect=True)
def test_hanging_homeserver_is_unauthorized_within_the_time_limit(frontend, peers, alice):
    """The homeserver would answer after 15 s; the service gives up after 10 s (§5.1)."""
    peers.full.script(alice.access_token, json_reply(200, {"sub": alice.user_id}, delay=15))
    started = time.monotonic()
    response = frontend.post_json("/get_token", matrix_client.get_token_body(alice))
    elapsed = time.monotonic() - started
    expect.matrix_error(response, 401, "M_UNAUTHORIZED", expect.UNAUTHORIZED)
    assert elapsed < 11, f"answered after {elapsed:.1f} s"
    assert len(peers.full.userinfo_requests) == 1


@pytest.mark.parametrize("endpoint, body_for", [("/get_token", matrix_client.get_token_body),
                                                ("/sfu/get", matrix_client.legacy_body)], ids=["get_token", "sfu-get"])
def test_restricted_user_cannot_delegate_delayed_events(frontend, peers, bob, endpoint, body_for):
    response = frontend.post_json(endpoint, body_for(bob, delay_id="syd_abc", delay_timeout=8000))
    expect.matrix_error(response, 400, "M_BAD_JSON", expect.DELEGATION_RESTRICTED)
    # The check follows OpenID verification (§3.4 step 8).
    assert len(peers.restricted.userinfo_requests) == 1
    assert peers.sfu.calls == []


@pytest.mark.parametrize("endpoint, body_for", [("/get_token", matrix_client.get_token_body),
                                                ("/sfu/get", matrix_client.legacy_body)], ids=["get_token", "sfu-get"])
@pytest.mark.parametrize("status", [500, 503, 404])
def test_sfu_error_fails_room_creation(frontend, peers, alice, endpoint, body_for, status):
    peers.sfu.fail_with(status)
    response = frontend.post_json(endpoint, body_for(alice))
    expect.matrix_error(response, 500, "M_UNKNOWN", expect.ROOM_CREATION_FAILED)
    assert len(peers.sfu.calls) == 1, "no retry (§6.5)"


def test_sfu_down_fails_room_creation(start_stack, alice, bob):
    # Nothing listens on that port: connection refused.
    _, frontend = start_stack(LIVEKIT_URL=f"ws://127.0.0.1:{free_port()}")
    response = frontend.post_json("/get_token", matrix_client.get_token_body(alice))
    expect.matrix_error(response, 500, "M_UNKNOWN", expect.ROOM_CREATION_FAILED)
    # Restricted users never talk to the SFU, so they are not affected.
    assert frontend.post_json("/get_token", matrix_client.get_token_body(bob)).status == 200
