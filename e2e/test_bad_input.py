"""Malformed requests get the contract's Matrix error, never a crash or a web server error page
(contract §3.1 body limit, §3.3 decoding, §3.4/§3.5 validation)."""

import copy
import json

import pytest

import expect
import matrix_client

T1 = "The request body is missing `room_id` or `slot_id`"
T2 = "The request body `member` is missing a `id`, `claimed_user_id` or `claimed_device_id`"
T3 = "The request body `openid_token` is missing a `access_token` or `matrix_server_name`"
T4 = "The request body is missing `delay_id` or `delay_timeout`"
T5 = "Missing room parameter"
T6 = "Missing OpenID token parameters"

BODY_LIMIT = 64 * 1024


def without(dotted: str):
    """A change to a request body: remove the member at the dotted path."""
    def change(document: dict) -> dict:
        document = copy.deepcopy(document)
        *parents, name = dotted.split(".")
        target = document
        for parent in parents:
            target = target[parent]
        del target[name]
        return document
    return change


def setting(dotted: str, value):
    """A change to a request body: set the member at the dotted path."""
    def change(document: dict) -> dict:
        document = copy.deepcopy(document)
        *parents, name = dotted.split(".")
        target = document
        for parent in parents:
            target = target[parent]
        target[name] = value
        return document
    return change


GET_TOKEN_CASES = [
    pytest.param(without("room_id"), T1, id="room_id-absent"),
    pytest.param(setting("slot_id", ""), T1, id="slot_id-empty"),
    pytest.param(setting("room_id", None), T1, id="room_id-null"),
    # Validation order: room first, then member, then OpenID token.
    pytest.param(lambda _: {}, T1, id="empty-object"),
    pytest.param(lambda _: None, T1, id="top-level-null-is-empty-object"),
    pytest.param(without("member.id"), T2, id="member.id-absent"),
    pytest.param(setting("member.claimed_user_id", ""), T2, id="member.claimed_user_id-empty"),
    pytest.param(without("member.claimed_device_id"), T2, id="member.claimed_device_id-absent"),
    pytest.param(without("member"), T2, id="member-absent"),
    pytest.param(setting("openid_token.access_token", ""), T3, id="access_token-empty"),
    pytest.param(without("openid_token.matrix_server_name"), T3, id="matrix_server_name-absent"),
    pytest.param(without("openid_token"), T3, id="openid_token-absent"),
    pytest.param(setting("delay_id", "syd_abc"), T4, id="delay_id-without-delay_timeout"),
    pytest.param(setting("delay_timeout", 8000), T4, id="delay_timeout-without-delay_id"),
    pytest.param(lambda body: {**body, "delay_id": "syd_abc", "delay_timeout": 0}, T4, id="delay_timeout-zero"),
]

LEGACY_CASES = [
    pytest.param(without("room"), T5, id="room-absent"),
    pytest.param(setting("room", ""), T5, id="room-empty"),
    pytest.param(lambda _: {}, T5, id="empty-object"),
    pytest.param(without("openid_token.access_token"), T6, id="access_token-absent"),
    pytest.param(setting("openid_token.matrix_server_name", ""), T6, id="matrix_server_name-empty"),
    pytest.param(without("openid_token"), T6, id="openid_token-absent"),
    pytest.param(setting("delay_id", "syd_abc"), T4, id="delay_id-without-delay_timeout"),
    pytest.param(setting("delay_timeout", 8000), T4, id="delay_timeout-without-delay_id"),
]


@pytest.mark.parametrize("change, text", GET_TOKEN_CASES)
def test_get_token_validation_text(frontend, peers, alice, change, text):
    response = frontend.post_json("/get_token", change(matrix_client.get_token_body(alice)))
    expect.matrix_error(response, 400, "M_BAD_JSON", text)
    # Nothing goes out before validation has passed.
    assert peers.full.userinfo_requests == []
    assert peers.sfu.calls == []


@pytest.mark.parametrize("change, text", LEGACY_CASES)
def test_legacy_validation_text(frontend, peers, alice, change, text):
    response = frontend.post_json("/sfu/get", change(matrix_client.legacy_body(alice)))
    expect.matrix_error(response, 400, "M_BAD_JSON", text)
    assert peers.full.userinfo_requests == []


def appended(members: bytes):
    """A change to the encoded body: extra members spelled out literally (json.dumps would
    normalise 8000.0 and 8e3)."""
    return lambda encoded: encoded[:-1] + b", " + members + b"}"


def encoded(change):
    return lambda body: json.dumps(change(json.loads(body))).encode()


NOT_JSON_CASES = [
    ("empty-body", lambda _: b""),
    ("truncated", lambda body: body[:-7]),
    ("top-level-array", lambda _: b"[]"),
    ("top-level-string", lambda _: b'"room"'),
    ("top-level-number", lambda _: b"42"),
    ("top-level-boolean", lambda _: b"true"),
    ("unknown-top-level-member", encoded(setting("unexpected", "x"))),
    ("unknown-member-in-openid_token", encoded(setting("openid_token.scope", "x"))),
    ("member-name-case", lambda body: body.replace(b'"openid_token"', b'"OPENID_TOKEN"')),
    ("object-member-is-a-string", encoded(setting("openid_token", "x"))),
    ("delay_timeout-string", appended(b'"delay_id": "d", "delay_timeout": "8000"')),
    ("delay_timeout-fraction", appended(b'"delay_id": "d", "delay_timeout": 8000.0')),
    ("delay_timeout-exponent", appended(b'"delay_id": "d", "delay_timeout": 8e3')),
    ("delay_timeout-beyond-int64", appended(b'"delay_id": "d", "delay_timeout": 9223372036854775808')),
    ("trailing-data", lambda body: body + b" {}"),
    ("invalid-utf8", lambda body: body.replace(b"!room", b"!r\xff\xfeom")),
    # Deep nesting must not exhaust a worker thread's stack. 60000 levels instead of 100000: a
    # larger body would be refused before parsing as over 64 KiB.
    ("60000-nested-arrays", lambda _: b"[" * 60000),
    ("60000-nested-arrays-in-a-member", lambda _: b'{"openid_token":' + b"[" * 60000),
]

ENDPOINTS = {"get_token": ("/get_token", matrix_client.get_token_body),
             "sfu-get": ("/sfu/get", matrix_client.legacy_body)}

NOT_JSON_PARAMS = [
    *(pytest.param(endpoint, change, id=f"{endpoint}-{case}")
      for endpoint in ENDPOINTS for case, change in NOT_JSON_CASES),
    pytest.param("get_token", encoded(setting("member.name", "Alice")), id="get_token-unknown-member-in-member"),
    # `member` belongs to /get_token's schema, not to the legacy one.
    pytest.param("sfu-get", encoded(setting("member", {"id": "m"})), id="sfu-get-member-of-the-other-schema"),
]


@pytest.mark.parametrize("endpoint, change", NOT_JSON_PARAMS)
def test_undecodable_body_is_not_json(frontend, peers, alice, endpoint, change):
    path, body_for = ENDPOINTS[endpoint]
    body = change(json.dumps(body_for(alice)).encode())
    response = frontend.request("POST", path, body, headers={"Content-Type": "application/json"})
    expect.matrix_error(response, 400, "M_NOT_JSON", expect.NOT_JSON)
    assert peers.full.userinfo_requests == []


def padded_to(document: dict, size: int) -> bytes:
    """`document` as JSON, padded with trailing whitespace (still valid JSON) to exactly `size` bytes."""
    encoded = json.dumps(document).encode()
    return encoded + b" " * (size - len(encoded))


@pytest.mark.parametrize("endpoint", ["/get_token", "/sfu/get"])
def test_body_over_64_kib_is_413_too_large(frontend, endpoint):
    response = frontend.request("POST", endpoint, padded_to({}, 70 * 1024))
    expect.matrix_error(response, 413, "M_TOO_LARGE", "Request body too large")


def test_body_limit_is_exactly_64_kib(frontend):
    at_limit = frontend.request("POST", "/get_token", padded_to({}, BODY_LIMIT))
    expect.matrix_error(at_limit, 400, "M_BAD_JSON", T1)
    over_limit = frontend.request("POST", "/get_token", padded_to({}, BODY_LIMIT + 1))
    expect.matrix_error(over_limit, 413, "M_TOO_LARGE", "Request body too large")


@pytest.mark.parametrize("frontend", ["nginx-root", "nginx-unbuffered", "caddy-root", "caddy-prefix", "cgi"],
                         indirect=True)
def test_chunked_body_is_read_to_the_end(frontend, peers, alice):
    """Caddy passes CONTENT_LENGTH -1 for chunked bodies, unbuffered nginx an empty one."""
    body = json.dumps(matrix_client.get_token_body(alice)).encode()
    response = frontend.request("POST", "/get_token", body, chunked=True)
    assert response.status == 200, response.body
    assert len(peers.sfu.calls) == 1

    too_large = frontend.request("POST", "/get_token", padded_to({}, 70 * 1024), chunked=True)
    expect.matrix_error(too_large, 413, "M_TOO_LARGE", "Request body too large")


TOO_LONG = "The request body has a value longer than 255 bytes"
LONG = "a" * 256
LONG_IN_BYTES = "é" * 128  # 128 characters, 256 bytes

# §13.4: every request string that is stored, hashed or logged, 256 bytes long.
LONG_TOKEN_CASES = [
    pytest.param(setting(field, value), id=f"{field}-{name}")
    for field in ("room_id", "slot_id", "member.id", "member.claimed_user_id", "member.claimed_device_id",
                  "openid_token.matrix_server_name")
    for name, value in (("256-ascii", LONG), ("256-bytes-128-characters", LONG_IN_BYTES))
] + [pytest.param(lambda body: {**body, "delay_id": LONG, "delay_timeout": 8000}, id="delay_id-256-ascii")]

LONG_LEGACY_CASES = [
    pytest.param(setting(field, LONG), id=field) for field in ("room", "device_id", "openid_token.matrix_server_name")
] + [pytest.param(lambda body: {**body, "delay_id": LONG, "delay_timeout": 8000}, id="delay_id")]


@pytest.mark.parametrize("change", LONG_TOKEN_CASES)
@pytest.mark.parametrize("path", ["/get_token", "/delegate_delayed_leave"])
def test_values_over_255_bytes_are_refused_before_any_call(frontend, peers, alice, path, change):
    body = change(matrix_client.get_token_body(alice))
    if path == "/delegate_delayed_leave" and "delay_id" not in body:
        body = {**body, "delay_id": "syd_abc", "delay_timeout": 8000}
    response = frontend.post_json(path, body)
    expect.matrix_error(response, 400, "M_BAD_JSON", TOO_LONG)
    assert peers.full.userinfo_requests == []
    assert peers.sfu.calls == []


@pytest.mark.parametrize("change", LONG_LEGACY_CASES)
def test_legacy_values_over_255_bytes_are_refused_before_any_call(frontend, peers, alice, change):
    response = frontend.post_json("/sfu/get", change(matrix_client.legacy_body(alice)))
    expect.matrix_error(response, 400, "M_BAD_JSON", TOO_LONG)
    assert peers.full.userinfo_requests == []


def test_values_of_255_bytes_pass(frontend, peers, alice):
    body = matrix_client.get_token_body(alice, room_id="!" + "r" * 254, slot_id="s" * 255, member_id="m" * 255,
                                        device_id="é" * 127 + "d")
    response = frontend.post_json("/get_token", body)
    assert response.status == 200, response.body


def test_the_validation_texts_come_before_the_length_check(frontend, alice):
    body = setting("slot_id", LONG)(without("room_id")(matrix_client.get_token_body(alice)))
    expect.matrix_error(frontend.post_json("/get_token", body), 400, "M_BAD_JSON", T1)
