"""LiveKit webhooks as the SFU sends them (contract §7.1, §7.3): a JSON `WebhookEvent` body and, in
`Authorization`, a raw HS256 JWT (iss = API key, exp/nbf/iat, sha256 = padded standard base64 of
the body's SHA-256), POSTed to /sfu_webhook.
"""

import base64
import hashlib
import hmac
import json
import secrets
import time

import http_client

JWT_HEADER = b'{"alg":"HS256","typ":"JWT"}'
VALIDITY = 300  # LiveKit signs webhooks for five minutes

CLIENT_INITIATED = "CLIENT_INITIATED"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def body_digest(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def sign(body: bytes, key: str, secret: str, *, now: int | None = None, validity: int = VALIDITY,
         claims: dict | None = None) -> str:
    """The Authorization value for `body`. `claims` replaces the standard claims (for forged tokens)."""
    issued = int(time.time()) if now is None else now
    if claims is None:
        claims = {"iss": key, "exp": issued + validity, "nbf": issued, "iat": issued, "sha256": body_digest(body)}
    signing_input = _b64url(JWT_HEADER) + "." + _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64url(signature)


def event_body(event: str, room: str, identity: str, *, reason: str | int | None = None) -> bytes:
    """A WebhookEvent in LiveKit's proto-JSON (lowerCamelCase, 64-bit numbers as strings)."""
    now = int(time.time())
    participant = {"sid": "PA_" + secrets.token_hex(6), "identity": identity,
                   "state": "ACTIVE" if event == "participant_joined" else "DISCONNECTED",
                   "joinedAt": str(now)}
    if reason is not None:
        participant["disconnectReason"] = reason
    document = {"event": event, "room": {"sid": "RM_" + secrets.token_hex(6), "name": room},
                "participant": participant, "id": "EV_" + secrets.token_hex(6), "createdAt": str(now)}
    return json.dumps(document, separators=(",", ":")).encode()


class WebhookSender:
    """Posts signed webhooks to a service reachable at `base_url` + `prefix`."""

    def __init__(self, base_url: str, key: str, secret: str, prefix: str = ""):
        self.base_url = base_url
        self.key = key
        self.secret = secret
        self.prefix = prefix

    def post(self, body: bytes, authorization: str | None) -> http_client.Response:
        headers = {"Content-Type": "application/webhook+json"}
        if authorization is not None:
            headers["Authorization"] = authorization
        response = http_client.request(self.base_url, "POST", self.prefix + "/sfu_webhook", body, headers=headers)
        # §3.7: always 200 with an empty body, whatever happened.
        assert (response.status, response.body) == (200, b""), (response.status, response.body)
        return response

    def send(self, event: str, room: str, identity: str, *, reason: str | int | None = None) -> None:
        body = event_body(event, room, identity, reason=reason)
        self.post(body, sign(body, self.key, self.secret))

    def joined(self, room: str, identity: str) -> None:
        self.send("participant_joined", room, identity)

    def left(self, room: str, identity: str, reason: str | int | None = CLIENT_INITIATED) -> None:
        self.send("participant_left", room, identity, reason=reason)

    def aborted(self, room: str, identity: str, reason: str | int | None = None) -> None:
        self.send("participant_connection_aborted", room, identity, reason=reason)
