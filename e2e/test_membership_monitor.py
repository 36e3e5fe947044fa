"""The membership monitor (AS-MODE.md B4) against a real Synapse 1.163.2: users who leave or are
banned from the Matrix room leave the call; the whole server leaving ends the call; a homeserver
outage removes nobody. The SFU is a fake that records RemoveParticipant and DeleteRoom.

The interval is 2 s, so "within one interval" is checked with a margin for a loaded machine.
"""

import os
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import quote

import pytest

import appservice
import oracle
import synapse
from appservice import CLIENT_PREFIXES
from fakes.removals import RemovalSFU
from processes import wait_until

pytestmark = pytest.mark.skipif(appservice.as_mode_missing_reason() is not None,
                                reason=str(appservice.as_mode_missing_reason()))

INTERVAL = 2.0  # s, LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS
# A sweep starts at most one interval after the change; its homeserver and SFU calls, and a loaded
# machine, get this much on top.
MARGIN = 1.5
# Where measured times are appended, one `ban <s>` or `rejoin <s>` per line (for the README's figures).
LATENCY_LOG = os.environ.get("LKJWT_MEMBERSHIP_LATENCY_LOG")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    started = appservice.start_stack(tmp_path_factory.mktemp("membership"), sfu_class=RemovalSFU,
                                     LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS=str(int(INTERVAL)))
    yield started
    still_running = started.service.process.running()
    started.stop()
    assert still_running, f"the service died:\n{started.service_log()[-4000:]}"


@dataclass(frozen=True)
class CallMember:
    user: synapse.User
    room: str
    alias: str
    identity: str


def join_call(stack, user: synapse.User, room: str, slot: str) -> CallMember:
    """A token through Synapse (the AS endpoint tracks it), then the SFU's signed participant_joined."""
    body = {"url": stack.sfu.url, "room_id": room, "slot_id": slot, "member_id": "member-" + secrets.token_hex(4)}
    response = user.request("POST", CLIENT_PREFIXES["v1"] + "/rtc/livekit/get_token", body)
    assert response.status == 200, response.body
    member = CallMember(user, room, oracle.hashed_name(room, slot), oracle.hashed_name(user.user_id, body["member_id"]))
    stack.sfu.set_present(member.alias, member.identity)
    stack.webhooks().joined(member.alias, member.identity)
    return member


def shared_room(stack, owner: synapse.User, *members: synapse.User) -> str:
    room = owner.create_room()
    for member in members:
        owner.invite(room, member.user_id)
        member.join(room)
    return room


def removals_of(stack, member: CallMember) -> list:
    return stack.sfu.removals("RemoveParticipant", member.identity)


def deletions_of(stack, alias: str) -> list:
    return [removal for removal in stack.sfu.removals("DeleteRoom") if removal.room == alias]


def removal_log_lines(stack, member: CallMember) -> list[str]:
    return [line for line in stack.service_log().splitlines()
            if 'msg="Removed participant from the call"' in line and f"lkId={member.identity}" in line]


def record_latency(kind: str, seconds: float) -> None:
    if LATENCY_LOG:
        with open(LATENCY_LOG, "a") as log:
            log.write(f"{kind} {seconds:.3f}\n")


def ban(owner: synapse.User, room: str, user: synapse.User) -> None:
    owner.call("POST", f"/_matrix/client/v3/rooms/{quote(room)}/ban", {"user_id": user.user_id, "reason": "e2e"})


def test_banned_user_is_removed_within_one_interval(stack):
    alice, bob = stack.synapse.register(), stack.synapse.register()
    room = shared_room(stack, alice, bob)
    slot = "m.call#" + secrets.token_hex(4)
    in_call = [join_call(stack, alice, room, slot), join_call(stack, bob, room, slot)]
    # A sweep or two with both still members: nobody is touched.
    time.sleep(INTERVAL * 1.5)
    assert not any(removals_of(stack, member) for member in in_call)

    banned = time.monotonic()
    ban(alice, room, bob)
    wait_until(lambda: removals_of(stack, in_call[1]), "RemoveParticipant for the banned user", timeout=INTERVAL + MARGIN)
    [removal] = removals_of(stack, in_call[1])
    latency = removal.arrived - banned
    record_latency("ban", latency)
    assert latency <= INTERVAL + MARGIN
    assert removal.authorized and removal.room == in_call[1].alias and removal.status == 200

    # Exactly that identity, exactly once; the room's call goes on.
    time.sleep(INTERVAL * 1.5)
    assert len(removals_of(stack, in_call[1])) == 1
    assert removals_of(stack, in_call[0]) == []
    assert deletions_of(stack, in_call[0].alias) == []
    [line] = removal_log_lines(stack, in_call[1])
    assert f"matrixId={bob.user_id}" in line and f"matrixRoom={room}" in line and "check=sweep" in line
    assert "no longer joined to the Matrix room" in line


def test_user_who_leaves_the_room_is_removed_and_at_once_when_coming_back(stack):
    alice, carol = stack.synapse.register(), stack.synapse.register()
    room = shared_room(stack, alice, carol)
    slot = "m.call#" + secrets.token_hex(4)
    staying = join_call(stack, alice, room, slot)
    leaving = join_call(stack, carol, room, slot)
    carol.leave(room)
    wait_until(lambda: removals_of(stack, leaving), "RemoveParticipant for the user who left", timeout=INTERVAL + MARGIN)

    # Back on the SFU with the same token: removed at once, not at the next sweep.
    stack.sfu.set_present(leaving.alias, leaving.identity)
    came_back = time.monotonic()
    stack.webhooks().joined(leaving.alias, leaving.identity)
    wait_until(lambda: len(removals_of(stack, leaving)) == 2, "RemoveParticipant after the second participant_joined",
               timeout=INTERVAL + MARGIN)
    assert removals_of(stack, leaving)[1].arrived - came_back <= INTERVAL + MARGIN
    record_latency("rejoin", removals_of(stack, leaving)[1].arrived - came_back)
    wait_until(lambda: any("check=participant_joined" in line for line in removal_log_lines(stack, leaving)),
               "the removal found by the check at participant_joined", timeout=5)
    assert removals_of(stack, staying) == []


def test_whole_server_leaving_the_room_deletes_the_call(stack):
    dave = stack.synapse.register()
    room = dave.create_room()
    member = join_call(stack, dave, room, "m.call#" + secrets.token_hex(4))
    time.sleep(INTERVAL * 1.5)
    assert deletions_of(stack, member.alias) == []
    # The only local member leaves: this homeserver is no longer in the room (joined_members → 403,
    # is_joined(server) → false).
    dave.leave(room)
    wait_until(lambda: deletions_of(stack, member.alias), "DeleteRoom for the call", timeout=INTERVAL + MARGIN)
    time.sleep(INTERVAL * 1.5)
    [deletion] = deletions_of(stack, member.alias)
    assert deletion.authorized and deletion.status == 200
    assert removals_of(stack, member) == []
    assert 'msg="Deleted the call of a Matrix room this homeserver left"' in stack.service_log()


def test_failed_removal_is_retried_by_the_next_sweep(stack):
    erin, frank = stack.synapse.register(), stack.synapse.register()
    room = shared_room(stack, erin, frank)
    slot = "m.call#" + secrets.token_hex(4)
    join_call(stack, erin, room, slot)
    leaving = join_call(stack, frank, room, slot)
    stack.sfu.fail_removals_with(503)
    try:
        frank.leave(room)
        wait_until(lambda: removals_of(stack, leaving), "a failing RemoveParticipant", timeout=INTERVAL + MARGIN)
        assert removals_of(stack, leaving)[0].status == 503
    finally:
        stack.sfu.fail_removals_with(None)
    wait_until(lambda: any(r.status == 200 for r in removals_of(stack, leaving)), "the retried RemoveParticipant",
               timeout=INTERVAL + MARGIN)
    time.sleep(INTERVAL * 1.5)
    assert [r.status for r in removals_of(stack, leaving)][-1] == 200
    assert sum(1 for r in removals_of(stack, leaving) if r.status == 200) == 1


def test_homeserver_down_removes_nobody(stack):
    """Last in this module: it stops Synapse."""
    gina, hank = stack.synapse.register(), stack.synapse.register()
    room = shared_room(stack, gina, hank)
    slot = "m.call#" + secrets.token_hex(4)
    members = [join_call(stack, gina, room, slot), join_call(stack, hank, room, slot)]
    time.sleep(INTERVAL)
    before = len(stack.sfu.removals())
    stack.synapse.stop()
    time.sleep(INTERVAL * 3)
    assert len(stack.sfu.removals()) == before, stack.sfu.removals()[before:]
    assert all(stack.sfu.is_present(m.alias, m.identity) for m in members)
    assert re.search(r'msg="Could not check the Matrix room\'s members; nobody is removed from its call".*matrixRoom='
                     + re.escape(room), stack.service_log())
