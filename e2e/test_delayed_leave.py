"""Delayed leave delegation (MSC4140) end to end, contract §3.4–§3.6, §7, §8, §9: two worker processes
(multiwatch under spawn-fcgi) sharing one job store behind nginx, a fake SFU answering GetParticipant,
signed webhooks, and a fake client-server API that records every restart and send.

Every test runs once against SQLite and once against a real redis-server (the module's `stack`).
Most tests hand a delayed leave over through all three ways at once — /get_token, /sfu/get and
/delegate_delayed_leave — and follow each job on its own, so that the timings overlap.
Short delay timeouts (1–6 s) keep the suite quick; times are measured at the fakes.
"""

import time
from datetime import datetime

import pytest

import expect
import matrix_client
import oracle
import service as lkjwt
import webhooks
from processes import wait_until
from fakes.client_server_api import NOT_FOUND, OK, rate_limited, server_error
from job_fixtures import cs_api, logs_on_failure, participant_sfu, redis_server, scenario  # noqa: F401 (fixtures)
from job_fixtures import two_worker_stack
from job_stores import STORES, job_state, storage_field
from scenarios import ENDPOINTS, LEGACY_SLOT, Scenario, gaps, sleep_until

# Scheduling allowance: the scheduler polls every 50 ms, plus HTTP and a busy two-core machine.
LATE = 0.4
# Clock granularity between the service's millisecond wall clock and our monotonic readings.
EARLY = 0.05


@pytest.fixture(scope="module", params=STORES)
def stack(request, peers, cs_api, participant_sfu, tmp_path_factory):
    yield from two_worker_stack(request, peers, cs_api, participant_sfu, tmp_path_factory, "delayed-leave")


def members_for_every_endpoint(scenario: Scenario):
    return [scenario.member(endpoint) for endpoint in ENDPOINTS]


def assert_no_calls_after(calls, moment: float, what: str):
    late = [call for call in calls if call.arrived > moment]
    assert not late, f"{what}: {late}"


# ---------------------------------------------------------------------------------------------
# The webhook helper itself, against the contract's worked example (§7.3).

def test_webhook_signature_reproduces_the_contract_example():
    body = (b'{"event":"participant_left","room":{"name":"O8437W3+jmzMVjoIP3tNwbm+XxHQk2iKpOA7aqw3qSc"},'
            b'"participant":{"identity":"J+T45tGruxc+HrUOqJJlyQSV33m728Cme4+vt8/SWrU","disconnectReason":'
            b'"CLIENT_INITIATED"},"id":"EV_test","createdAt":"1700000000"}')
    assert webhooks.body_digest(body) == "1hytFKCmomDO0HjNd5rjhxd0opFYg1wF6cwesxghy9c="
    assert webhooks.sign(body, "devkey", "devsecret", now=1700000000) == (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJkZXZrZXkiLCJleHAiOjE3MDAwMDAzMDAsIm5iZiI6MTcwMDAwMDAwMCwia"
        "WF0IjoxNzAwMDAwMDAwLCJzaGEyNTYiOiIxaHl0RktDbW9tRE8wSGpOZDVyamh4ZDBvcEZZZzF3RjZjd2VzeGdoeTljPSJ9.45uXWhn4X3"
        "Ola_OWiTVj7nOVoePTElhO4N7BbBffWS0")


# ---------------------------------------------------------------------------------------------
# Waiting for the first connection (state W).

def test_connection_never_established_sends_after_the_delay_timeout(scenario, participant_sfu, cs_api):
    """W → (waiting timer, delay_timeout) → D → one send; the job is deleted (§8.5 example timeline)."""
    delegations = [scenario.delegate(member, 1000) for member in members_for_every_endpoint(scenario)]
    for delegation in delegations:
        [send] = scenario.wait_sent(delegation, timeout=4)
        assert delegation.started + delegation.timeout - EARLY <= send.arrived <= delegation.finished + delegation.timeout + LATE
        # §9.2: POST, body {}, JSON, no Authorization (the delay ID is the capability).
        assert (send.method, send.body, send.content_type, send.authorization) == ("POST", b"{}", "application/json", None)
        assert send.raw_path == (f"/_matrix/client/unstable/org.matrix.msc4140/delayed_events/{delegation.delay_id}/send")
    for delegation in delegations:
        scenario.wait_job_gone(delegation.member)
    # A retry or a second send could only come within the send window (1 s); wait it out.
    sleep_until(max(d.finished for d in delegations) + 2.2)
    for delegation in delegations:
        member = delegation.member
        assert [call.action for call in cs_api.calls(delegation.delay_id)] == ["send"]
        # Phase-1 participant lookups were made for the member (§8.6), with a roomAdmin token for its room.
        lookups = participant_sfu.lookups(member.alias, member.identity)
        assert lookups and all(lookup.authorized for lookup in lookups), lookups
        assert lookups[0].arrived <= delegation.finished + LATE
    assert cs_api.unexpected_calls() == []


def test_client_initiated_leave_before_connecting_is_ignored(scenario, cs_api):
    """§8.4 note: W ignores ParticipantDisconnectedIntentionally; the waiting timer still sends."""
    delegations = [scenario.delegate(member, 1500) for member in members_for_every_endpoint(scenario)]
    for delegation in delegations:
        scenario.leave(delegation.member, reason=webhooks.CLIENT_INITIATED)
    for delegation in delegations:
        assert job_state(scenario.job(delegation.member)) == "WaitingForInitialConnect"
    for delegation in delegations:
        [send] = scenario.wait_sent(delegation, timeout=5)
        assert send.arrived >= delegation.started + delegation.timeout - EARLY
        assert cs_api.restarts(delegation.delay_id) == []


ABORTS_BEFORE_CONNECTING = [("participant_connection_aborted", None), ("participant_connection_aborted", "JOIN_FAILURE"),
                            ("participant_left", "SIGNAL_CLOSE")]


def test_connection_aborted_before_connecting_gives_up_without_sending(scenario, cs_api):
    """W + ParticipantConnectionAborted (aborted with any reason, or left for a reason other than
    CLIENT_INITIATED) → A: the job is deleted at once, nothing reaches the homeserver."""
    delegations = []
    for event, reason in ABORTS_BEFORE_CONNECTING:
        for member in members_for_every_endpoint(scenario):
            delegations.append((scenario.delegate(member, 1500), event, reason))
    for delegation, event, reason in delegations:
        scenario.leave(delegation.member, event=event, reason=reason)
    for delegation, _, _ in delegations:
        scenario.wait_job_gone(delegation.member, timeout=delegation.timeout)
    # The waiting timer would have sent at delay_timeout; nothing may come, then or later.
    sleep_until(max(d.finished for d, _, _ in delegations) + 1.5 + 1.0)
    for delegation, event, reason in delegations:
        assert cs_api.calls(delegation.delay_id) == [], (event, reason, delegation.member)


# ---------------------------------------------------------------------------------------------
# Connected (state C): restarts.

def test_member_already_present_is_found_by_lookup_and_restarted(scenario, participant_sfu, cs_api):
    """No webhook at all: the phase-1 GetParticipant finds the member → C → restart at once, then every
    0.8 × delay_timeout; no send while the member stays."""
    members = members_for_every_endpoint(scenario)
    for member in members:
        scenario.present(member)
    delegations = [scenario.delegate(member, 1500) for member in members]
    for delegation in delegations:
        [first] = cs_api.wait_for_calls(delegation.delay_id, "restart", 1, timeout=3)[:1]
        assert first.arrived <= delegation.finished + LATE, "the lookup runs right after creation"
    # Long enough that a job still waiting would have sent (1.5 s) and two more restarts are due.
    sleep_until(max(d.finished for d in delegations) + 2.0 * 1.5)
    for delegation in delegations:
        restarts = cs_api.restarts(delegation.delay_id)
        assert len(restarts) >= 3, restarts
        assert all(0.8 * 1.5 - EARLY <= gap <= 0.8 * 1.5 + LATE for gap in gaps(restarts)), gaps(restarts)
        assert cs_api.sends(delegation.delay_id) == []
        assert job_state(scenario.job(delegation.member)) == "Connected"
        present = participant_sfu.lookups(delegation.member.alias, delegation.member.identity)
        assert any(lookup.status == 200 for lookup in present)


def test_restarts_repeat_at_80_percent_of_the_timeout(scenario, cs_api):
    """participant_joined → C → restart now, then at 80 % of delay_timeout after each success (§8.5),
    always before the delayed event would fire."""
    timeout = 1.5
    delegations = [scenario.delegate(member, int(timeout * 1000)) for member in members_for_every_endpoint(scenario)]
    joined = {d.delay_id: scenario.join(d.member, presence=False) for d in delegations}
    for delegation in delegations:
        restarts = cs_api.wait_for_calls(delegation.delay_id, "restart", 5, timeout=10)
        assert restarts[0].arrived - joined[delegation.delay_id] <= LATE
        intervals = gaps(restarts[:5])
        assert all(0.8 * timeout - EARLY <= gap <= 0.8 * timeout + LATE for gap in intervals), intervals
        assert all(gap < timeout for gap in intervals)
        assert cs_api.sends(delegation.delay_id) == []


DISCONNECTS = [("participant_left", "SIGNAL_CLOSE"), ("participant_left", None),
               ("participant_connection_aborted", "UNKNOWN_REASON"), ("participant_left", webhooks.CLIENT_INITIATED)]


def test_disconnect_after_connecting_sends_at_once(scenario, cs_api):
    """C + left/aborted (any reason, CLIENT_INITIATED included) → D → one send right away; restarts
    stop; the job is deleted."""
    delegations = []
    for event, reason in DISCONNECTS:
        for member in members_for_every_endpoint(scenario):
            delegations.append((scenario.delegate(member, 3000), event, reason))
    for delegation, _, _ in delegations:
        # Webhooks only (the SFU's GetParticipant never sees them), so the send can only come from the webhook.
        scenario.join(delegation.member, presence=False)
    for delegation, _, _ in delegations:
        cs_api.wait_for_calls(delegation.delay_id, "restart", 1, timeout=3)
    left = {d.delay_id: scenario.leave(d.member, event=event, reason=reason) for d, event, reason in delegations}
    for delegation, event, reason in delegations:
        [send] = scenario.wait_sent(delegation, timeout=3)
        assert left[delegation.delay_id] <= send.arrived <= left[delegation.delay_id] + LATE + 0.3, (event, reason)
    for delegation, _, _ in delegations:
        scenario.wait_job_gone(delegation.member)
    sleep_until(max(left.values()) + 1.5)
    for delegation, event, reason in delegations:
        assert len(cs_api.sends(delegation.delay_id)) == 1, (event, reason, delegation.member)
        first_send = cs_api.sends(delegation.delay_id)[0].arrived
        assert_no_calls_after(cs_api.restarts(delegation.delay_id), first_send, "restart after the send")


def test_member_silently_gone_is_noticed_by_the_sanity_check(scenario, participant_sfu, cs_api):
    """Found by lookup, later absent from the SFU without any webhook: the phase-2 check
    (LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS=1) raises SFUParticipantGone → D → send."""
    members = members_for_every_endpoint(scenario)
    for member in members:
        scenario.present(member)
    delegations = [scenario.delegate(member, 3000) for member in members]
    for delegation in delegations:
        cs_api.wait_for_calls(delegation.delay_id, "restart", 1, timeout=3)
    # Phase 2 starts with the phase-1 success (a 200 lookup); wait for one sanity check to see the
    # member present too, so that the absence below is noticed by phase 2 and not phase 1.
    for delegation in delegations:
        member = delegation.member
        wait_until(lambda: sum(lookup.status == 200 for lookup in participant_sfu.lookups(member.alias, member.identity)) >= 2,
                   f"a sanity check seeing {member}", timeout=4)
    gone = {d.delay_id: scenario.leave(d.member, webhook=False) for d in delegations}
    for delegation in delegations:
        assert cs_api.sends(delegation.delay_id) == []
    for delegation in delegations:
        [send] = scenario.wait_sent(delegation, timeout=4)
        assert gone[delegation.delay_id] <= send.arrived <= gone[delegation.delay_id] + 1.0 + LATE + 0.3
        scenario.wait_job_gone(delegation.member)


# ---------------------------------------------------------------------------------------------
# What the homeserver answers (§9.3).

def test_restart_answered_404_stops_the_job_without_sending(scenario, cs_api):
    """The delayed event is gone (404 on restart) → DelayedEventNotFound → A: no send, job deleted."""
    delegations = []
    for member in members_for_every_endpoint(scenario):
        delay_id = scenario.delay_id(member.endpoint)
        cs_api.script(delay_id, "restart", OK, NOT_FOUND)
        delegations.append(scenario.delegate(member, 1000, delay_id))
        scenario.join(member, presence=False)
    for delegation in delegations:
        first, second = cs_api.wait_for_calls(delegation.delay_id, "restart", 2, timeout=4)[:2]
        assert (first.status, second.status) == (200, 404)
        assert 0.8 - EARLY <= second.arrived - first.arrived <= 0.8 + LATE
        scenario.wait_job_gone(delegation.member)
    sleep_until(max(cs_api.restarts(d.delay_id)[1].arrived for d in delegations) + 1.5)
    for delegation in delegations:
        assert [call.action for call in cs_api.calls(delegation.delay_id)] == ["restart", "restart"]


def test_send_answered_404_is_done(scenario, cs_api):
    """404 on send = already sent or cancelled = success: one send call, no retry, job deleted."""
    delegations = []
    for member in members_for_every_endpoint(scenario):
        delay_id = scenario.delay_id(member.endpoint)
        cs_api.script(delay_id, "send", NOT_FOUND)
        delegations.append(scenario.delegate(member, 1000, delay_id))
    for delegation in delegations:
        cs_api.wait_for_calls(delegation.delay_id, "send", 1, timeout=4)
        scenario.wait_job_gone(delegation.member)
    # A retry would come within the 1 s send window.
    sleep_until(max(cs_api.sends(d.delay_id)[0].arrived for d in delegations) + 1.8)
    for delegation in delegations:
        assert [(call.action, call.status) for call in cs_api.calls(delegation.delay_id)] == [("send", 404)]


def test_rate_limits_are_honoured(scenario, cs_api):
    """429 with a retry-after hint: the next attempt comes exactly after the hint, not before (§9.3):
    `Retry-After: 2` on a restart, `retry_after_ms: 1500` (→ 2 s) on a restart, `Retry-After: 2` on a send."""
    header, body, on_send = (scenario.member(endpoint) for endpoint in ENDPOINTS)
    plans = [(header, "restart", rate_limited(retry_after="2")),
             (body, "restart", rate_limited(retry_after_ms=1500)),
             (on_send, "send", rate_limited(retry_after="2", retry_after_ms=9000))]
    delegations = {}
    for member, action, reply in plans:
        delay_id = scenario.delay_id(action)
        cs_api.script(delay_id, action, reply, OK)
        delegations[member.endpoint] = scenario.delegate(member, 6000, delay_id)
        scenario.join(member, presence=False)
    for member, action, _ in plans[:2]:
        first, retry = cs_api.wait_for_calls(delegations[member.endpoint].delay_id, "restart", 2, timeout=5)[:2]
        assert (first.status, retry.status) == (429, 200)
        assert 2.0 - EARLY <= retry.arrived - first.arrived <= 2.0 + LATE, retry.arrived - first.arrived
    sender = delegations["delegate"]
    cs_api.wait_for_calls(sender.delay_id, "restart", 1, timeout=3)
    scenario.leave(on_send)
    first, retry = cs_api.wait_for_calls(sender.delay_id, "send", 2, timeout=5)[:2]
    assert (first.status, retry.status) == (429, 200)
    # The header wins over the body's retry_after_ms (§9.3).
    assert 2.0 - EARLY <= retry.arrived - first.arrived <= 2.0 + LATE, retry.arrived - first.arrived
    scenario.wait_job_gone(on_send)
    assert len(cs_api.accepted_sends(sender.delay_id)) == 1


def test_server_errors_are_retried_with_backoff(scenario, cs_api):
    """5xx is transient: restart 503, 500, then 200 keeps the job connected; send 502 then 200 sends
    once. Retries follow the backoff of §8.7 (1 s ± 50 %, then 1.5 s ± 50 %)."""
    restarting, sending = scenario.member("get_token"), scenario.member("delegate")
    restart_id, send_id = scenario.delay_id("restart"), scenario.delay_id("send")
    cs_api.script(restart_id, "restart", server_error(503), server_error(500), OK)
    cs_api.script(send_id, "send", server_error(502), OK)
    scenario.delegate(restarting, 5000, restart_id)
    scenario.delegate(sending, 5000, send_id)
    scenario.join(restarting, presence=False)
    scenario.join(sending, presence=False)
    cs_api.wait_for_calls(send_id, "restart", 1, timeout=3)
    scenario.leave(sending)
    sends = cs_api.wait_for_calls(send_id, "send", 2, timeout=5)
    assert [call.status for call in sends] == [502, 200]
    assert 0.5 - EARLY <= sends[1].arrived - sends[0].arrived <= 1.5 + LATE
    scenario.wait_job_gone(sending)
    restarts = cs_api.wait_for_calls(restart_id, "restart", 3, timeout=6)
    assert [call.status for call in restarts[:3]] == [503, 500, 200]
    first_gap, second_gap = gaps(restarts[:3])
    assert 0.5 - EARLY <= first_gap <= 1.5 + LATE and 0.75 - EARLY <= second_gap <= 2.25 + LATE, (first_gap, second_gap)
    assert job_state(scenario.job(restarting)) == "Connected"
    assert cs_api.sends(restart_id) == []
    assert len(cs_api.sends(send_id)) == 2 and len(cs_api.accepted_sends(send_id)) == 1


# ---------------------------------------------------------------------------------------------
# Several jobs.

def test_a_newer_job_for_the_same_member_replaces_the_older(scenario, cs_api):
    """§8.8: syd_first replaced by syd_second before any webhook → the homeserver only ever sees
    syd_second; a third job replacing the second while connected silences the second."""
    timeout = 1.5
    runs = []
    for member in members_for_every_endpoint(scenario):
        first = scenario.delegate(member, int(timeout * 1000), scenario.delay_id("syd_first"))
        second = scenario.delegate(member, int(timeout * 1000), scenario.delay_id("syd_second"))
        assert scenario.job(member)["Params"]["DelayId"] == second.delay_id
        runs.append((member, first, second))
    for member, _, _ in runs:
        scenario.join(member)
    for member, _, second in runs:
        cs_api.wait_for_calls(second.delay_id, "restart", 2, timeout=4)
    thirds = []
    for member, _, _ in runs:
        third = scenario.delegate(member, int(timeout * 1000), scenario.delay_id("syd_third"))
        thirds.append(third)
    for third in thirds:
        # Still on the SFU: the new job's lookup finds the member and restarts its own event.
        cs_api.wait_for_calls(third.delay_id, "restart", 1, timeout=3)
    # Past the first job's own waiting timer, had it survived.
    sleep_until(max(first.finished for _, first, _ in runs) + timeout + 0.5)
    left = {third.delay_id: scenario.leave(third.member) for third in thirds}
    for (member, first, second), third in zip(runs, thirds):
        scenario.wait_sent(third, timeout=3)
        scenario.wait_job_gone(member)
        assert cs_api.calls(first.delay_id) == [], "the replaced first job reached the homeserver"
        assert cs_api.sends(second.delay_id) == []
        assert_no_calls_after(cs_api.calls(second.delay_id), third.finished + 0.2, "the replaced second job")
        [send] = cs_api.sends(third.delay_id)
        assert send.arrived >= left[third.delay_id]


def test_independent_jobs_do_not_interfere(scenario, cs_api):
    """One member leaving sends only its own event: not the one of another device of the same user in
    the same room, nor of the same member in another room, nor of a legacy client in the same room."""
    leaving = scenario.member("get_token")
    same_room_other_device = scenario.member("delegate", room_id=leaving.room_id, account=leaving.account)
    same_member_other_room = scenario.member("get_token", account=leaving.account, device_id=leaving.device_id,
                                             member_id=leaving.member_id)
    legacy_same_room = scenario.member("sfu_get", room_id=leaving.room_id)
    assert same_member_other_room.identity == leaving.identity and same_member_other_room.alias != leaving.alias
    members = [leaving, same_room_other_device, same_member_other_room, legacy_same_room]
    delegations = [scenario.delegate(member, 2000) for member in members]
    for member in members:
        scenario.join(member)
    for delegation in delegations:
        cs_api.wait_for_calls(delegation.delay_id, "restart", 1, timeout=3)
    gone = scenario.leave(leaving)
    scenario.wait_sent(delegations[0], timeout=3)
    scenario.wait_job_gone(leaving)
    # The others carry on: at least one more restart each, in time, and no send.
    sleep_until(gone + 2.0)
    for delegation in delegations[1:]:
        restarts = cs_api.restarts(delegation.delay_id)
        assert any(call.arrived > gone for call in restarts), restarts
        assert all(gap < 2.0 for gap in gaps(restarts))
        assert cs_api.sends(delegation.delay_id) == []
        assert job_state(scenario.job(delegation.member)) == "Connected"
    assert len(cs_api.sends(delegations[0].delay_id)) == 1


def test_legacy_token_holder_who_delegates_is_recognised(scenario, participant_sfu, cs_api):
    """A client with a legacy /sfu/get token (identity `user:device`) delegating through
    /delegate_delayed_leave (hashed identity) is watched under both identities: found by lookup and
    by webhooks under the legacy identity, so no premature send (the reference service sends it)."""
    timeout = 1.5
    by_lookup, by_webhook = scenario.member("delegate"), scenario.member("delegate")
    for member in (by_lookup, by_webhook):
        assert member.slot_id == LEGACY_SLOT  # so that both endpoints derive the same room alias
    scenario.present(by_lookup, identity=by_lookup.legacy_identity)
    looked_up = scenario.delegate(by_lookup, int(timeout * 1000), legacy_token=True)
    hooked = scenario.delegate(by_webhook, int(timeout * 1000), legacy_token=True)
    joined = scenario.join(by_webhook, identity=by_webhook.legacy_identity, presence=False)
    assert cs_api.wait_for_calls(hooked.delay_id, "restart", 1, timeout=3)[0].arrived - joined <= LATE
    cs_api.wait_for_calls(looked_up.delay_id, "restart", 1, timeout=3)
    # Beyond the waiting timer: a job that did not recognise its member would have sent by now.
    sleep_until(max(looked_up.finished, hooked.finished) + timeout + 1.0)
    for delegation in (looked_up, hooked):
        assert cs_api.sends(delegation.delay_id) == [], "sent while the member is still in the call"
        assert len(cs_api.restarts(delegation.delay_id)) >= 2
        assert job_state(scenario.job(delegation.member)) == "Connected"
    assert any(lookup.status == 200 for lookup in participant_sfu.lookups(by_lookup.alias, by_lookup.legacy_identity))
    # Leaving under the legacy identity sends.
    left = scenario.leave(by_webhook, identity=by_webhook.legacy_identity, reason="SIGNAL_CLOSE")
    [send] = scenario.wait_sent(hooked, timeout=3)
    assert send.arrived - left <= LATE + 0.3
    scenario.wait_job_gone(by_webhook)


def test_restricted_users_cannot_delegate(scenario, peers, cs_api):
    """400 on the token endpoints, 403 on /delegate_delayed_leave (§3.4 step 8, §3.6 step 7); no job."""
    bob = matrix_client.register(peers.restricted, "bob")
    delay_id = scenario.delay_id("restricted")
    get_token = matrix_client.get_token_body(bob, delay_id=delay_id, delay_timeout=1000)
    legacy = matrix_client.legacy_body(bob, delay_id=delay_id, delay_timeout=1000)
    expect.matrix_error(scenario.client.post_json("/get_token", get_token), 400, "M_BAD_JSON", expect.DELEGATION_RESTRICTED)
    expect.matrix_error(scenario.client.post_json("/sfu/get", legacy), 400, "M_BAD_JSON", expect.DELEGATION_RESTRICTED)
    expect.matrix_error(scenario.client.post_json("/delegate_delayed_leave", get_token), 403, "M_FORBIDDEN",
                        expect.DELEGATION_RESTRICTED)
    # Without delegation they still get their token (and no job).
    assert scenario.client.post_json("/get_token", matrix_client.get_token_body(bob)).status == 200
    identity = oracle.hashed_name(bob.user_id, "DEVICE", "member-1")
    assert scenario.store.job(oracle.hashed_name("!room:example.org", "m.call#ROOM"), identity) is None
    assert scenario.store.job(oracle.hashed_name("!room:example.org", LEGACY_SLOT), f"{bob.user_id}:DEVICE") is None
    assert not any(delay_id == job["Params"]["DelayId"] for job in scenario.store.jobs())
    assert cs_api.calls(delay_id) == []


def test_unverifiable_webhooks_change_nothing(scenario, stack, cs_api):
    """§7.1: unsigned, mis-signed, foreign-key, tampered and expired webhooks are answered 200, logged,
    and ignored: the member stays unconnected and the waiting timer sends."""
    member = scenario.member("get_token")
    delegation = scenario.delegate(member, 1500)
    body = webhooks.event_body("participant_joined", member.alias, member.identity)
    other = webhooks.event_body("participant_joined", member.alias, member.identity + "x")
    now = int(time.time())
    forged = {
        "unsigned": None,
        "wrong secret": webhooks.sign(body, lkjwt.API_KEY, "not-the-secret"),
        "other key": webhooks.sign(body, "other-key", lkjwt.API_SECRET),
        "body digest of another body": webhooks.sign(other, lkjwt.API_KEY, lkjwt.API_SECRET),
        "expired": webhooks.sign(body, lkjwt.API_KEY, lkjwt.API_SECRET, now=now - 600),
        "not yet valid": webhooks.sign(body, lkjwt.API_KEY, lkjwt.API_SECRET, claims={
            "iss": lkjwt.API_KEY, "exp": now + 900, "nbf": now + 600, "iat": now, "sha256": webhooks.body_digest(body)}),
    }
    warnings_before = stack.stderr().count("Failed to validate webhook")
    for authorization in forged.values():
        stack.webhooks.post(body, authorization)
    assert job_state(scenario.job(member)) == "WaitingForInitialConnect"
    [send] = scenario.wait_sent(delegation, timeout=4)
    assert send.arrived >= delegation.started + delegation.timeout - EARLY
    assert cs_api.restarts(delegation.delay_id) == []
    assert stack.stderr().count("Failed to validate webhook") - warnings_before == len(forged)


def test_redis_layout_is_the_reference_services(scenario, stack):
    """§8.9: hash lk-jwt:jobs, field = canonical JSON [alias, identity], value with upstream's members;
    the field exists exactly while the job does."""
    if stack.store.kind != "redis":
        pytest.skip("Redis layout only")
    hashed, legacy = scenario.member("get_token"), scenario.member("sfu_get")
    delegations = [scenario.delegate(member, 60000) for member in (hashed, legacy)]
    fields = stack.store.fields()
    for delegation in delegations:
        member = delegation.member
        assert storage_field(member.alias, member.identity) in fields
        record = stack.store.job(member.alias, member.identity)
        assert record["Params"] == {"DelayId": delegation.delay_id, "DelayTimeout": 60000 * 1_000_000,
                                    "ServerName": member.account.server_name, "LiveKitRoom": member.alias,
                                    "LiveKitIdentity": member.identity,
                                    # Upstream's name for the owner; quotas count by it (§13.4).
                                    "OwnerUserId": member.account.user_id}
        restarted_at = datetime.fromisoformat(record["RestartedAt"].replace("Z", "+00:00"))
        assert abs(restarted_at.timestamp() - time.time()) < 5, record["RestartedAt"]
        scenario.leave(member, event="participant_connection_aborted", reason=None)
    for delegation in delegations:
        scenario.wait_job_gone(delegation.member)
        member = delegation.member
        assert storage_field(member.alias, member.identity) not in stack.store.fields()
