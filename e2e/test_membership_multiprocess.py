"""The membership sweep is the deployment's, not each process's (AS-MODE.md B4): four workers under
multiwatch, and two hosts (two worker pools) on one Redis, sweep once per interval between them.

Each sweep asks the SFU once about a tracked participant that is not on it (GetParticipant), so the
fake SFU's look-ups of that identity count the sweeps. The participant is written into the store
in upstream PR #235's layout, as another host (or upstream itself) would have tracked it, so these
tests need no homeserver: none of their sweeps gets as far as asking one.
"""

import json
import secrets
import sqlite3
import time
from datetime import datetime, timezone

import pytest

import service as lkjwt
from job_fixtures import participant_sfu, redis_server  # noqa: F401 (fixtures)
from job_stores import RedisJobs, SQLiteJobs, open_store, storage_field
from processes import wait_until
from worker_pool import WorkerPool

INTERVAL = 2.0
WINDOW = 10.0  # s of sweeps counted


def monitor_environment(sfu, store) -> dict:
    """Application-service mode with a homeserver nobody asks (see the module text)."""
    return lkjwt.service_environment(
        livekit_url=sfu.url, full_access="example.org", ca_file=None,
        LIVEKIT_AS_TOKEN="as-" + secrets.token_hex(8), LIVEKIT_HS_TOKEN="hs-" + secrets.token_hex(8),
        LIVEKIT_HS_SERVER_NAME="hs.invalid", LIVEKIT_CS_API_URL_OVERRIDES="hs.invalid=http://127.0.0.1:9",
        LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS=str(int(INTERVAL)), **store.environment())


def track(store, alias: str, identity: str) -> None:
    """A participant tracked in the store, not (yet) seen on the SFU."""
    registered = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    record = json.dumps({"matrix_room_id": "!room:hs.invalid", "matrix_user_id": "@someone:hs.invalid",
                         "livekit_room": alias, "livekit_identity": identity, "registered_at": registered})
    field = storage_field(alias, identity)
    if isinstance(store, RedisJobs):
        store.command("HSET", "lk-jwt:participants", field, record)
        return
    connection = sqlite3.connect(str(store.path), timeout=10)
    try:
        with connection:
            connection.execute("INSERT INTO participants(storage_name, room, identity, record) VALUES(?, ?, ?, ?)",
                               (field, alias, identity, record))
    finally:
        connection.close()


def sweep_times(sfu, alias: str, identity: str) -> list[float]:
    return [lookup.arrived for lookup in sfu.lookups(alias, identity)]


def assert_one_sweep_per_interval(sfu, alias: str, identity: str, pools: list) -> None:
    wait_until(lambda: sweep_times(sfu, alias, identity), "the first sweep", timeout=INTERVAL * 3)
    first = sweep_times(sfu, alias, identity)[0]
    time.sleep(max(0.0, first + WINDOW + 0.5 - time.monotonic()))
    times = [t for t in sweep_times(sfu, alias, identity) if t <= first + WINDOW + 0.5]
    gaps = [later - earlier for earlier, later in zip(times, times[1:])]
    logs = "\n".join(pool.stderr()[-3000:] for pool in pools)
    # WINDOW / INTERVAL sweeps after the first; one more or less for the edges and a loaded machine,
    # never one per process.
    assert WINDOW / INTERVAL - 1 <= len(times) - 1 <= WINDOW / INTERVAL + 1, (gaps, logs)
    assert min(gaps) >= INTERVAL * 0.8, (gaps, logs)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_four_workers_sweep_once_per_interval(kind, tmp_path, participant_sfu, request):
    redis = request.getfixturevalue("redis_server") if kind == "redis" else None
    store = open_store(kind, tmp_path, redis)
    pool = WorkerPool(monitor_environment(participant_sfu, store), tmp_path, tmp_path / "workers.sock",
                      name="membership-workers", workers=4)
    try:
        alias, identity = "alias-" + secrets.token_hex(4), "lk-" + secrets.token_hex(4)
        track(store, alias, identity)
        assert_one_sweep_per_interval(participant_sfu, alias, identity, [pool])
        assert pool.stderr().count("Membership monitor started") == 4
    finally:
        pool.stop()


def test_two_hosts_on_one_redis_sweep_once_per_interval(tmp_path, participant_sfu, redis_server):
    store = RedisJobs(redis_server)
    env = monitor_environment(participant_sfu, store)
    pools = []
    try:
        for host in ("host-a", "host-b"):
            directory = tmp_path / host
            directory.mkdir()
            pools.append(WorkerPool(env, directory, directory / "workers.sock", name=f"membership-{host}", workers=2))
        alias, identity = "alias-" + secrets.token_hex(4), "lk-" + secrets.token_hex(4)
        track(store, alias, identity)
        assert_one_sweep_per_interval(participant_sfu, alias, identity, pools)
    finally:
        for pool in pools:
            pool.stop()
