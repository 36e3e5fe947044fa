"""The delayed-leave job stores (contract §8.9), as the service sees them (environment) and as the
tests inspect them: an SQLite file or a database of a real redis-server; and what a stored record says."""

import json
import sqlite3
from pathlib import Path

from redis_client import RedisConnection, RedisServer

STORES = ["sqlite", "redis"]
LEASE_SECONDS = 30  # claim lease of §8.10 rule 4
HEARTBEAT_TIMEOUT_SECONDS = 15  # §8.11 cold start


def storage_field(alias: str, identity: str) -> str:
    """§8.9: the Redis hash field is the canonical JSON array [alias, identity] (§4.1 escaping)."""
    return json.dumps([alias, identity], separators=(",", ":"), ensure_ascii=False)


class SQLiteJobs:
    kind = "sqlite"

    def __init__(self, path: Path):
        self.path = path

    def environment(self) -> dict:
        return {"LIVEKIT_JOBS_DB": str(self.path), "LIVEKIT_REDIS_URL": None}

    def _query(self, sql: str, *parameters):
        if not self.path.exists():
            return []
        connection = sqlite3.connect(str(self.path), timeout=10)
        try:
            return connection.execute(sql, parameters).fetchall()
        finally:
            connection.close()

    def job(self, alias: str, identity: str) -> dict | None:
        rows = self._query("SELECT record FROM jobs WHERE room = ? AND identity = ?", alias, identity)
        return json.loads(rows[0][0]) if rows else None

    def jobs(self) -> list[dict]:
        return [json.loads(record) for (record,) in self._query("SELECT record FROM jobs")]

    def heartbeat(self) -> int | None:
        rows = self._query("SELECT value FROM meta WHERE name = 'heartbeat'")
        return rows[0][0] if rows else None

    def set_heartbeat(self, milliseconds: int) -> None:
        """Only while no process of the service runs (a live scheduler keeps the newest value)."""
        connection = sqlite3.connect(str(self.path), timeout=10)
        try:
            with connection:
                connection.execute("UPDATE meta SET value = ? WHERE name = 'heartbeat'", (milliseconds,))
        finally:
            connection.close()


class RedisJobs:
    kind = "redis"

    def __init__(self, server: RedisServer):
        self.server = server
        self.db = server.new_database()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.server.port}/{self.db}"

    def environment(self) -> dict:
        return {"LIVEKIT_REDIS_URL": self.url, "LIVEKIT_JOBS_DB": None}

    def command(self, *arguments):
        with RedisConnection(self.server.port, self.db) as connection:
            return connection.command(*arguments)

    def job(self, alias: str, identity: str) -> dict | None:
        value = self.command("HGET", "lk-jwt:jobs", storage_field(alias, identity))
        return json.loads(value) if value is not None else None

    def jobs(self) -> list[dict]:
        flat = self.command("HGETALL", "lk-jwt:jobs") or []
        return [json.loads(value) for value in flat[1::2]]

    def fields(self) -> list[str]:
        return [name.decode() for name in self.command("HKEYS", "lk-jwt:jobs") or []]

    def heartbeat(self) -> int | None:
        value = self.command("GET", "lk-jwt:heartbeat")
        return int(value) if value is not None else None

    def set_heartbeat(self, milliseconds: int) -> None:
        self.command("SET", "lk-jwt:heartbeat", milliseconds)


def open_store(kind: str, directory: Path, redis_server: "RedisServer | None") -> "SQLiteJobs | RedisJobs":
    if kind == "sqlite":
        return SQLiteJobs(directory / "jobs.sqlite3")
    assert redis_server is not None
    return RedisJobs(redis_server)


def job_state(record: dict | None) -> str | None:
    return None if record is None else record["Engine"]["State"]


def job_id(record: dict | None) -> str | None:
    return None if record is None else record["Engine"]["JobId"]


def claim_owners(record: dict) -> list[str]:
    """Owners of the activities of a stored job that are claimed right now (`<pid>-<random>`)."""
    engine = record.get("Engine", {})
    return [engine[name]["Claim"]["Owner"] for name in ("Lookup", "Restart", "Send")
            if isinstance(engine.get(name), dict) and "Claim" in engine[name]]


def owner_pid(owner: str) -> int:
    return int(owner.split("-", 1)[0])
