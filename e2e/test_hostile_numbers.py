"""Hostile numbers and quotas end to end (contract §13.4, §13.5, §8.8 rev. 2): two worker processes
(multiwatch under spawn-fcgi) sharing one job store behind nginx, a fake client-server API that
answers every restart and send with 429 and absurd retry hints, and one user asking for more delayed
leave events than the service keeps for anyone.

Every test runs once against SQLite and once against a real redis-server (the module's `stack`).
"""

import time

import pytest

import expect
import http_client
import matrix_client
from fakes.client_server_api import rate_limited, slow
from job_fixtures import cs_api, logs_on_failure, participant_sfu, redis_server, scenario  # noqa: F401 (fixtures)
from job_fixtures import two_worker_stack
from job_stores import STORES
from processes import wait_until
from scenarios import Scenario, sleep_until, token_body
from worker_pool import JobsStack

# Scheduling allowance: the scheduler polls every 50 ms, plus HTTP and a busy two-core machine.
LATE = 0.4
SEND_WINDOW = 1.0  # §8.5: a job that never connected gets a 1 s send window
JOBS_PER_USER = 32

HUGE_HINTS = [
    # What made every worker trap before: the ms rounded up overflowed, and so did elapsed + hint once
    # the sequence had run for more than 807 ms (hence the answer delayed by 0.9 s).
    pytest.param(slow(rate_limited(retry_after="9223372036854775", retry_after_ms=9223372036854775807), 0.9),
                 id="seconds-header-and-ms-body-after-0.9s"),
    pytest.param(rate_limited(retry_after_ms=9223372036854775807), id="ms-body"),
    pytest.param(rate_limited(retry_after="99999999999999999999999999"), id="seconds-beyond-64-bit"),
    pytest.param(rate_limited(retry_after="Fri, 31 Dec 9999 23:59:59 GMT"), id="http-date-far-ahead"),
]


@pytest.fixture(scope="module", params=STORES)
def stack(request, peers, cs_api, participant_sfu, tmp_path_factory):
    yield from two_worker_stack(request, peers, cs_api, participant_sfu, tmp_path_factory, "hostile-numbers")


def healthz(stack: JobsStack) -> int:
    return http_client.request(stack.nginx.base_url, "GET", "/healthz", timeout=5).status


def wait_gone(scenario: Scenario, member, timeout: float) -> float:
    """The moment (monotonic) the member's job was first seen gone from the store."""
    wait_until(lambda: scenario.job(member) is None, f"the job of {member} leaving the store", timeout=timeout)
    return time.monotonic()


def assert_workers_unharmed(stack: JobsStack, pids: list[int]) -> None:
    """No worker trapped: multiwatch would have replaced it with a new PID."""
    assert stack.pool.worker_pids() == pids, "a worker exited and was respawned"
    assert all(healthz(stack) == 200 for _ in range(5))
    log = stack.stderr()
    assert "Fatal error" not in log and "Illegal instruction" not in log, log[-3000:]


@pytest.mark.parametrize("reply", HUGE_HINTS)
def test_huge_retry_hints_end_the_job_without_harming_a_worker(scenario, stack, cs_api, reply):
    """A homeserver answering every restart and send with 429 and a hint of up to 2^63 − 1 ms: the
    hint does not fit in the activity's time, so the sequence gives up (§9.3) — the restart sequence
    aborts the job, the send sequence deletes it by its send window — and no worker exits."""
    pids = stack.pool.worker_pids()
    assert len(pids) == stack.workers
    connected, never_connected = scenario.member("delegate"), scenario.member("get_token")
    restart_id, send_id = scenario.delay_id("restart"), scenario.delay_id("send")
    for delay_id in (restart_id, send_id):
        cs_api.script(delay_id, "restart", reply)
        cs_api.script(delay_id, "send", reply)

    waiting = scenario.delegate(never_connected, 1500, send_id)
    scenario.delegate(connected, 4000, restart_id)
    scenario.join(connected, presence=False)

    [restart] = cs_api.wait_for_calls(restart_id, "restart", 1, timeout=5)
    assert restart.status == 429
    gone = wait_gone(scenario, connected, timeout=5)
    assert gone - restart.arrived <= reply.delay + LATE + 0.3, "the restart sequence gave up at once: DelayedEventTimedOut → A"

    [send] = cs_api.wait_for_calls(send_id, "send", 1, timeout=5)
    assert send.status == 429
    gone = wait_gone(scenario, never_connected, timeout=5)
    assert gone <= waiting.finished + waiting.timeout + SEND_WINDOW + LATE, "the job ended by its send window"

    # No retry may follow: neither sequence has room for the hint.
    sleep_until(max(gone, restart.arrived) + SEND_WINDOW + 0.5)
    assert [call.action for call in cs_api.calls(restart_id)] == ["restart"]
    assert [call.action for call in cs_api.calls(send_id)] == ["send"]
    assert_workers_unharmed(stack, pids)


def test_the_thirty_third_job_of_a_user_is_refused(scenario, stack, peers, cs_api):
    """§13.4: 32 live jobs per user; the 33rd new key gets 429 M_LIMIT_EXCEEDED (Matrix error, CORS
    headers) and writes nothing, while replacing an existing key and other users still work."""
    account = matrix_client.register(peers.full, "quota")
    members = [scenario.member("delegate", account=account) for _ in range(JOBS_PER_USER + 1)]
    delay_ids = [scenario.delay_id(str(index)) for index in range(len(members))]
    for member, delay_id in zip(members[:JOBS_PER_USER], delay_ids):
        response = scenario.client.post_json("/delegate_delayed_leave", token_body(member, delay_id=delay_id, delay_timeout=60000))
        assert (response.status, response.body) == (200, b"{}\n"), response.body

    refused = scenario.client.post_json("/delegate_delayed_leave",
                                        token_body(members[-1], delay_id=delay_ids[-1], delay_timeout=60000))
    expect.matrix_error(refused, 429, "M_LIMIT_EXCEEDED", "Too many delayed leave events")
    assert scenario.job(members[-1]) is None
    # /get_token with delegation counts the same jobs.
    over = scenario.client.post_json("/get_token", token_body(members[-1], delay_id=delay_ids[-1], delay_timeout=60000))
    expect.matrix_error(over, 429, "M_LIMIT_EXCEEDED", "Too many delayed leave events")

    # The existing jobs are untouched and carry their owner.
    for member, delay_id in zip(members[:JOBS_PER_USER], delay_ids):
        record = scenario.job(member)
        assert record is not None and record["Params"]["DelayId"] == delay_id
        assert record["Params"]["OwnerUserId"] == account.user_id

    # Replacing the job of an existing key is not a new job.
    replacement_id = scenario.delay_id("replacement")
    replaced = scenario.client.post_json("/delegate_delayed_leave",
                                         token_body(members[0], delay_id=replacement_id, delay_timeout=60000))
    assert (replaced.status, replaced.body) == (200, b"{}\n"), replaced.body
    assert scenario.job(members[0])["Params"]["DelayId"] == replacement_id

    # Another user of the same server is not affected.
    other = scenario.member("delegate")
    scenario.delegate(other, 60000)

    # A job that ends frees its place: member 1 leaves (send → deleted), then the 33rd fits.
    scenario.join(members[1], presence=False)
    cs_api.wait_for_calls(delay_ids[1], "restart", 1, timeout=5)
    scenario.leave(members[1])
    wait_gone(scenario, members[1], timeout=5)
    admitted = scenario.client.post_json("/delegate_delayed_leave",
                                         token_body(members[-1], delay_id=delay_ids[-1], delay_timeout=60000))
    assert (admitted.status, admitted.body) == (200, b"{}\n"), admitted.body
    assert scenario.job(members[-1])["Params"]["DelayId"] == delay_ids[-1]
