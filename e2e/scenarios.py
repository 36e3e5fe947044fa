"""Delayed-leave scenarios: members of the three endpoints (contract §3.4, §3.5, §7), their
delegations, and a `Scenario` that drives them through webhooks and SFU presence on a stack."""

import re
import secrets
import threading
import time
from dataclasses import dataclass

import matrix_client
import oracle
import service as lkjwt
from fakes.client_server_api import FakeClientServerAPI
from fakes.homeserver import FakeHomeserver
from fakes.participants import ParticipantSFU
from processes import wait_until
from webhooks import CLIENT_INITIATED
from worker_pool import JobsStack, ServiceClient

ENDPOINTS = ["get_token", "sfu_get", "delegate"]
LEGACY_SLOT = "m.call#ROOM"  # the slot /sfu/get derives its room alias with (§3.5)


@dataclass
class Member:
    account: matrix_client.Account
    endpoint: str  # get_token | sfu_get | delegate: how the client hands its delayed leave over
    room_id: str
    device_id: str
    member_id: str
    slot_id: str = LEGACY_SLOT

    @property
    def alias(self) -> str:
        slot = LEGACY_SLOT if self.endpoint == "sfu_get" else self.slot_id
        return oracle.hashed_name(self.room_id, slot)

    @property
    def identity(self) -> str:
        """The LiveKit identity the service derives for this endpoint (§4.1)."""
        if self.endpoint == "sfu_get":
            return self.legacy_identity
        return oracle.hashed_name(self.account.user_id, self.device_id, self.member_id)

    @property
    def legacy_identity(self) -> str:
        return oracle.legacy_identity(self.account.user_id, self.device_id)

    def __str__(self) -> str:
        return f"{self.endpoint}:{self.account.user_id}/{self.device_id}"


@dataclass
class Delegation:
    member: Member
    delay_id: str
    timeout_ms: int
    started: float  # time.monotonic() just before the delegating request
    finished: float  # … and just after its answer

    @property
    def timeout(self) -> float:
        return self.timeout_ms / 1000


def token_body(member: Member, **extra) -> dict:
    if member.endpoint == "sfu_get":
        return matrix_client.legacy_body(member.account, room=member.room_id, device_id=member.device_id, **extra)
    return matrix_client.get_token_body(member.account, room_id=member.room_id, slot_id=member.slot_id,
                                        member_id=member.member_id, device_id=member.device_id, **extra)


def token_path(member: Member) -> str:
    return "/sfu/get" if member.endpoint == "sfu_get" else "/get_token"


def delegate(client: ServiceClient, member: Member, delay_id: str, timeout_ms: int, *,
             legacy_token: bool = False) -> Delegation:
    """Hand the member's delayed leave to the service the way its endpoint does it, checking the answer.

    For /delegate_delayed_leave the client first gets its JWT from /get_token, or with `legacy_token`
    from the legacy /sfu/get (it then joins the SFU as `user:device`)."""
    if member.endpoint == "delegate":
        # A client with a JWT already hands the delayed leave over separately.
        if legacy_token:
            response = client.post_json("/sfu/get", matrix_client.legacy_body(
                member.account, room=member.room_id, device_id=member.device_id))
            expected = (member.legacy_identity, oracle.hashed_name(member.room_id, LEGACY_SLOT))
        else:
            response = client.post_json("/get_token", token_body(member))
            expected = (member.identity, member.alias)
        assert response.status == 200, response.body
        claims = oracle.verified_claims(response.json()["jwt"], lkjwt.API_SECRET)
        assert (claims["sub"], claims["video"]["room"]) == expected, claims
        started = time.monotonic()
        response = client.post_json("/delegate_delayed_leave",
                                    token_body(member, delay_id=delay_id, delay_timeout=timeout_ms))
        finished = time.monotonic()
        assert (response.status, response.body) == (200, b"{}\n"), (response.status, response.body)
    else:
        started = time.monotonic()
        response = client.post_json(token_path(member), token_body(member, delay_id=delay_id, delay_timeout=timeout_ms))
        finished = time.monotonic()
        assert response.status == 200, response.body
        # The identity the tests watch (webhooks, presence) is the one the client joins with.
        claims = oracle.verified_claims(response.json()["jwt"], lkjwt.API_SECRET)
        assert (claims["sub"], claims["video"]["room"]) == (member.identity, member.alias), claims
    return Delegation(member, delay_id, timeout_ms, started, finished)


def sleep_until(deadline: float) -> None:
    """For negative checks only (nothing must happen before `deadline`): there is nothing to poll."""
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def gaps(calls) -> list[float]:
    return [later.arrived - earlier.arrived for earlier, later in zip(calls, calls[1:])]


class Scenario:
    """One test's members and delegations on a stack; at the end their delayed events are retired
    (404 for everything) so their jobs finish quickly, and, should the test fail, the service's log
    lines about them are printed (pytest shows them with the failure)."""

    def __init__(self, stack: JobsStack, homeserver: FakeHomeserver, sfu: ParticipantSFU, cs_api: FakeClientServerAPI,
                 tag: str = "t"):
        self.stack = stack
        self.homeserver = homeserver
        self.sfu = sfu
        self.cs_api = cs_api
        self.tag = re.sub(r"[^A-Za-z0-9_]", "_", tag)[:40]
        self.members: list[Member] = []
        self.delegations: list[Delegation] = []
        self._lock = threading.Lock()

    @property
    def client(self) -> ServiceClient:
        return self.stack.client

    @property
    def store(self):
        return self.stack.store

    def member(self, endpoint: str, *, room_id: str | None = None, account: matrix_client.Account | None = None,
               device_id: str | None = None, member_id: str | None = None, slot_id: str = LEGACY_SLOT) -> Member:
        suffix = secrets.token_hex(4)
        member = Member(account or matrix_client.register(self.homeserver, f"u{suffix}"), endpoint,
                        room_id or f"!room{suffix}:example.org", device_id or f"DEV{suffix.upper()}",
                        member_id or f"member-{suffix}", slot_id)
        with self._lock:
            self.members.append(member)
        return member

    def delay_id(self, label: str = "") -> str:
        return f"syd_{self.tag}_{label}_{secrets.token_hex(4)}"

    def delegate(self, member: Member, timeout_ms: int, delay_id: str | None = None, *,
                 legacy_token: bool = False) -> Delegation:
        delegation = delegate(self.client, member, delay_id or self.delay_id(member.endpoint), timeout_ms,
                              legacy_token=legacy_token)
        with self._lock:
            self.delegations.append(delegation)
        return delegation

    # The member on the SFU: presence (what GetParticipant answers) and webhooks.

    def present(self, member: Member, identity: str | None = None, present: bool = True) -> None:
        self.sfu.set_present(member.alias, identity or member.identity, present)

    def join(self, member: Member, *, identity: str | None = None, webhook: bool = True, presence: bool = True) -> float:
        identity = identity or member.identity
        if presence:
            self.sfu.set_present(member.alias, identity)
        moment = time.monotonic()
        if webhook:
            self.stack.webhooks.joined(member.alias, identity)
        return moment

    def leave(self, member: Member, *, identity: str | None = None, event: str = "participant_left",
              reason: str | int | None = CLIENT_INITIATED, webhook: bool = True) -> float:
        identity = identity or member.identity
        self.sfu.set_present(member.alias, identity, False)
        moment = time.monotonic()
        if webhook:
            self.stack.webhooks.send(event, member.alias, identity, reason=reason)
        return moment

    # The job as stored.

    def job(self, member: Member) -> dict | None:
        return self.store.job(member.alias, member.identity)

    def wait_job_gone(self, member: Member, timeout: float = 10.0) -> None:
        wait_until(lambda: self.job(member) is None, f"the job of {member} leaving the store", timeout=timeout)

    def wait_sent(self, delegation: Delegation, timeout: float) -> list:
        return self.cs_api.wait_for(lambda fake: fake.accepted_sends(delegation.delay_id),
                                    f"the delayed event {delegation.delay_id} sent", timeout)

    def finish(self) -> None:
        self.cs_api.retire(delegation.delay_id for delegation in self.delegations)
        for member in self.members:
            self.sfu.set_present(member.alias, member.identity, False)
            self.sfu.set_present(member.alias, member.legacy_identity, False)

    def log_excerpt(self, limit: int = 150) -> str:
        needles = ([d.delay_id for d in self.delegations] + [m.identity for m in self.members]
                   + [m.legacy_identity for m in self.members])
        lines = [line for line in self.stack.stderr().splitlines()
                 if any(needle in line for needle in needles) or "level=error" in line or "level=warn" in line]
        return "\n".join(lines[-limit:])
