"""What the contract says the service must produce, computed independently in Python.

Identities and room aliases (contract §4) and the LiveKit JWTs (§6.1, §6.2) are recomputed here
so that the tests compare the service against the specification, not against itself.
"""

import base64
import hashlib
import hmac
import json

JWT_HEADER = b'{"alg":"HS256","typ":"JWT"}'
JOIN_TOKEN_LIFETIME = 3600
SERVER_TOKEN_LIFETIME = 6 * 3600


def hashed_name(*parts: str) -> str:
    """H(s1, …, sn): unpadded standard base64 of SHA-256 over the Matrix canonical JSON array.

    For an array of strings Python's compact json.dumps with ensure_ascii=False is canonical JSON:
    it escapes only `"`, `\\` and control characters (lower-case hex), everything else stays raw.
    """
    canonical = json.dumps(list(parts), separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii").rstrip("=")


def legacy_identity(user_id: str, device_id: str) -> str:
    return f"{user_id}:{device_id}"


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verified_claims(token: str, secret: str) -> dict:
    """The claims of an HS256 JWT after checking header and signature; AssertionError otherwise."""
    header, payload, signature = token.split(".")
    assert _b64url_decode(header) == JWT_HEADER, f"unexpected JWT header {_b64url_decode(header)!r}"
    assert "=" not in token, "JWT segments must be unpadded"
    expected = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(_b64url_decode(signature), expected), "JWT signature does not verify"
    return json.loads(_b64url_decode(payload))


def assert_join_token(token: str, *, key: str, secret: str, identity: str, alias: str,
                      issued_between: tuple[float, float], can_publish: bool = True,
                      can_update_own_metadata: bool = False) -> None:
    """Contract §6.1: exactly these claims, valid for one hour, joining exactly that room; rev. 2:
    publishing only for full-access (and local) users, metadata updates only with the operator's
    LIVEKIT_CAN_UPDATE_OWN_METADATA=true."""
    claims = verified_claims(token, secret)
    assert set(claims) == {"iss", "sub", "exp", "nbf", "iat", "identity", "video"}, claims
    assert claims["iss"] == key
    assert claims["sub"] == identity
    assert claims["identity"] == identity
    earliest, latest = issued_between
    assert int(earliest) <= claims["iat"] <= latest, (claims["iat"], issued_between)
    assert claims["nbf"] == claims["iat"]
    assert claims["exp"] == claims["iat"] + JOIN_TOKEN_LIFETIME
    assert claims["video"] == {
        "roomJoin": True,
        "room": alias,
        "canPublish": can_publish,
        "canSubscribe": True,
        "canUpdateOwnMetadata": can_update_own_metadata,
    }
