"""What a MatrixRTC client sends: OpenID tokens from a (fake) homeserver and token request bodies."""

import secrets
from dataclasses import dataclass

from fakes.homeserver import FakeHomeserver


@dataclass(frozen=True)
class Account:
    homeserver: FakeHomeserver
    user_id: str
    access_token: str

    @property
    def server_name(self) -> str:
        return self.homeserver.server_name

    def openid_token(self) -> dict:
        return {"access_token": self.access_token, "token_type": "Bearer",
                "matrix_server_name": self.server_name, "expires_in": 3600}


def register(homeserver: FakeHomeserver, localpart: str, delay: float = 0.0) -> Account:
    """A user with a fresh OpenID token that `homeserver` will vouch for."""
    token = "openid-" + secrets.token_urlsafe(24)
    return Account(homeserver, homeserver.add_user(token, localpart, delay), token)


def get_token_body(account: Account, *, room_id: str = "!room:example.org", slot_id: str = "m.call#ROOM",
                   member_id: str = "member-1", device_id: str = "DEVICE", **extra) -> dict:
    """POST /get_token (contract §3.4)."""
    return {
        "room_id": room_id,
        "slot_id": slot_id,
        "openid_token": account.openid_token(),
        "member": {"id": member_id, "claimed_user_id": account.user_id, "claimed_device_id": device_id},
        **extra,
    }


def legacy_body(account: Account, *, room: str = "!room:example.org", device_id: str = "DEVICE", **extra) -> dict:
    """POST /sfu/get (contract §3.5)."""
    return {"room": room, "openid_token": account.openid_token(), "device_id": device_id, **extra}
