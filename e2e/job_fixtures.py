"""Fixtures of the job tests, imported by their modules (the shared conftest.py is not theirs): the
fakes a job talks to, a redis-server, a two-worker stack per store, and scenarios on it."""

import pytest

import service as lkjwt
from fakes.client_server_api import FakeClientServerAPI
from fakes.participants import ParticipantSFU
from job_stores import open_store
from redis_client import RedisServer
from scenarios import Scenario
from worker_pool import JobsStack, jobs_environment


@pytest.fixture(scope="module")
def cs_api():
    fake = FakeClientServerAPI().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def participant_sfu():
    fake = ParticipantSFU(lkjwt.API_KEY, lkjwt.API_SECRET).start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def logs_on_failure():
    """Collects scenarios; prints their log excerpts at teardown (shown by pytest only on failure)."""
    scenarios: list[Scenario] = []
    yield scenarios
    for scenario in scenarios:
        scenario.finish()
        print(f"--- service log lines about this test ({scenario.stack.name}) ---")
        print(scenario.log_excerpt())


def two_worker_stack(request, peers, cs_api, participant_sfu, tmp_path_factory, prefix: str):
    """Body of a module's `stack` fixture: two workers (4 threads each) on the store of the module's
    parameter, stopped at the end of the module; every worker that ever ran must have stopped on
    SIGTERM by itself ("Shutting down")."""
    directory = tmp_path_factory.mktemp(f"{prefix}-{request.param}")
    redis = request.getfixturevalue("redis_server") if request.param == "redis" else None
    store = open_store(request.param, directory, redis)
    env = jobs_environment(peers.full, peers.ca_file, participant_sfu, cs_api, store)
    started = JobsStack(directory, env, store, name=f"workers-{request.param}", workers=2, threads=4)
    yield started
    pids = started.pool.worker_pids()
    started.stop()
    assert started.stderr().count('msg="Shutting down"') >= len(pids)


@pytest.fixture
def scenario(request, stack, peers, participant_sfu, cs_api, logs_on_failure) -> Scenario:
    """A scenario on the module's `stack`, its log excerpt shown if the test fails."""
    made = Scenario(stack, peers.full, participant_sfu, cs_api, tag=request.node.originalname)
    logs_on_failure.append(made)
    return made
