"""Jobs of a server whose client-server API never answers cannot delay other servers' jobs
(contract §13.3): 200 delayed leaves of such a server beside one connected member of a healthy
server, one worker process with its default four executors; every restart of the healthy job
arrives before its delayed event would fire."""

import secrets
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import matrix_client
from fakes.silent import SilentTCPServers
from job_fixtures import cs_api, logs_on_failure, participant_sfu, redis_server  # noqa: F401 (fixtures)
from job_stores import open_store
from scenarios import Member, Scenario, delegate, gaps
from worker_pool import JobsStack, jobs_environment

SILENT_JOBS = 200
HEALTHY_TIMEOUT_MS = 3000
OBSERVED = 15.0


@pytest.fixture
def silent_cs_api():
    fake = SilentTCPServers([("127.0.0.1", 0)])
    yield fake
    fake.stop()


@pytest.mark.parametrize("store_kind", ["sqlite"])
def test_a_silent_client_server_api_does_not_delay_a_healthy_servers_restarts(
        store_kind, peers, cs_api, participant_sfu, silent_cs_api, logs_on_failure, tmp_path):
    silent_server = peers.restricted.server_name
    store = open_store(store_kind, tmp_path, None)
    env = jobs_environment(peers.full, peers.ca_file, participant_sfu, cs_api, store,
                           LIVEKIT_FULL_ACCESS_HOMESERVERS=f"{peers.full.server_name} {silent_server}",
                           LIVEKIT_IP_RANGE_ALLOWLIST="127.0.0.0/8")
    env["LIVEKIT_CS_API_URL_OVERRIDES"] += f",{silent_server}=http://127.0.0.1:{silent_cs_api.port}"
    stack = JobsStack(tmp_path, env, store, name="fairness", workers=1, threads=16)
    try:
        healthy = Scenario(stack, peers.full, participant_sfu, cs_api, tag="fairness")
        logs_on_failure.append(healthy)

        # Every one a different user (the per-user job quota), none ever joins: after 1 s each job's
        # waiting timer fires and its send is due, at a client-server API that never answers.
        def silent_job(index: int):
            account = matrix_client.register(peers.restricted, f"s{index}x{secrets.token_hex(3)}")
            member = Member(account, "get_token", f"!silent{index}:example.org", f"DEV{index}", f"member-{index}")
            delegate(stack.client, member, f"syd_silent_{index}_{secrets.token_hex(3)}", 1000)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(silent_job, range(SILENT_JOBS)))
        time.sleep(1.5)
        assert silent_cs_api.total() >= 2, "the silent jobs never reached their client-server API"

        member = healthy.member("get_token")
        delegation = healthy.delegate(member, HEALTHY_TIMEOUT_MS)
        joined = healthy.join(member, presence=False)
        time.sleep(OBSERVED)
        restarts = cs_api.restarts(delegation.delay_id)
    finally:
        stack.stop()

    timeout = HEALTHY_TIMEOUT_MS / 1000
    assert restarts, "the healthy job was never restarted"
    moments = [joined] + [call.arrived for call in restarts]
    intervals = gaps([type("At", (), {"arrived": moment}) for moment in moments])
    # Each restart before the previous one's delay would have run out (the first: since joining).
    assert all(gap < timeout for gap in intervals), intervals
    assert moments[-1] > joined + OBSERVED - timeout, "restarts stopped"
    assert cs_api.sends(delegation.delay_id) == []
    # The silent server kept at most half the executors busy, and was tried throughout.
    assert silent_cs_api.total() >= 4
