"""Support for the delayed-leave (MSC4140) job tests (contract §7–§9): job stores (SQLite file, a real
redis-server), several worker processes sharing one store (spawn-fcgi -n + multiwatch, nginx in
front), the `--jobs` runner, one-shot CGI invocations, and a `Scenario` that creates jobs for the
three endpoints and drives members through webhooks and SFU presence.

The fixtures at the end are imported by the test modules (the shared conftest.py is not ours).
"""

import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import http_client
from fastcgi import get_status
import matrix_client
import oracle
import service as lkjwt
from fakes.client_server_api import FakeClientServerAPI
from fakes.homeserver import FakeHomeserver
from fakes.participants import ParticipantSFU
from processes import Process, clean_environment, free_port, wait_until
from webhooks import CLIENT_INITIATED, WebhookSender
from webservers import LighttpdCGI, Nginx

STORES = ["sqlite", "redis"]
ENDPOINTS = ["get_token", "sfu_get", "delegate"]
LEGACY_SLOT = "m.call#ROOM"  # the slot /sfu/get derives its room alias with (§3.5)
MULTIWATCH = "/usr/bin/multiwatch"
LEASE_SECONDS = 30  # claim lease of §8.10 rule 4
HEARTBEAT_TIMEOUT_SECONDS = 15  # §8.11 cold start


# ---------------------------------------------------------------------------------------------
# Redis: a real server on a free port, and just enough RESP to look into it.

class RedisError(Exception):
    pass


class RedisConnection:
    def __init__(self, port: int, db: int = 0, timeout: float = 5.0):
        self._socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._reader = self._socket.makefile("rb")
        if db:
            self.command("SELECT", db)

    def close(self) -> None:
        self._reader.close()
        self._socket.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, *arguments):
        encoded = [argument if isinstance(argument, bytes) else str(argument).encode() for argument in arguments]
        payload = b"*%d\r\n" % len(encoded) + b"".join(b"$%d\r\n%s\r\n" % (len(item), item) for item in encoded)
        self._socket.sendall(payload)
        return self._read()

    def _read(self):
        line = self._reader.readline()
        if not line.endswith(b"\r\n"):
            raise RedisError(f"connection closed ({line!r})")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RedisError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            length = int(rest)
            return None if length < 0 else self._reader.read(length + 2)[:-2]
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self._read() for _ in range(count)]
        raise RedisError(f"unexpected reply {line!r}")


class RedisServer:
    """redis-server on 127.0.0.1:<free port>, nothing persisted, stopped by PID."""

    def __init__(self, directory: Path):
        self.directory = directory / "redis"
        self.directory.mkdir()
        self.port = free_port()
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--protected-mode", "yes",
                "--save", "", "--appendonly", "no", "--databases", "64", "--dir", str(self.directory),
                "--daemonize", "no", "--logfile", ""]
        self.process = Process(f"redis-server-{self.port}", argv, clean_environment(), directory)
        self._next_db = 1
        wait_until(lambda: not self.process.running() or self._pings(), f"redis-server answering PING on {self.port}")
        self.process.require_running()

    def _pings(self) -> bool:
        try:
            with RedisConnection(self.port) as connection:
                return connection.command("PING") == "PONG"
        except OSError:
            return False

    def new_database(self) -> int:
        """A database number nobody used yet in this server (each service gets its own)."""
        db = self._next_db
        self._next_db += 1
        with RedisConnection(self.port, db) as connection:
            connection.command("FLUSHDB")
        return db

    def stop(self) -> None:
        self.process.stop()


# ---------------------------------------------------------------------------------------------
# Job stores, as the service sees them (environment) and as the tests inspect them.

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


# ---------------------------------------------------------------------------------------------
# The service: several FastCGI workers on one socket, and the other ways to run it.

def jobs_environment(homeserver: FakeHomeserver, ca_file: Path, sfu: ParticipantSFU, cs_api: FakeClientServerAPI,
                     store, **overrides) -> dict:
    """Full access for `homeserver`, its client-server API at the fake, sanity checks every second."""
    return lkjwt.service_environment(
        livekit_url=sfu.url, full_access=homeserver.server_name, ca_file=ca_file,
        LIVEKIT_CS_API_URL_OVERRIDES=f"{homeserver.server_name}={cs_api.url}",
        LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS="1",
        **{**store.environment(), **overrides})


def children_of(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.append(int(entry))
    return sorted(children)


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class WorkerPool:
    """`spawn-fcgi -n` binds the socket and execs `multiwatch -f N`, which forks N service processes
    sharing that socket and respawns dead ones.

    Stopping: SIGTERM to multiwatch, which stops respawning and sends its "graceful" signal to every
    worker: SIGUSR1 by default (Debian's multiwatch 1.0.0 maps `-s NAME` to the wrong number: `-s TERM`
    sends SIGQUIT). The service takes SIGTERM, SIGINT, SIGUSR1 and SIGQUIT alike as a stop request.
    """

    STARTED = "Starting service"

    def __init__(self, env: dict, directory: Path, socket_path: Path, *, name: str, workers: int = 4, threads: int = 4,
                 respawns: int | None = None):
        self.name = name
        self.workers = workers
        self.upstream = f"unix:{socket_path}"
        # multiwatch gives a child up after 3 deaths within 10 s unless told otherwise (-r).
        retries = ["-r", str(respawns)] if respawns is not None else []
        argv = ["spawn-fcgi", "-n", "-s", str(socket_path), "-M", "0600", "--",
                MULTIWATCH, "-f", str(workers), *retries, "--", str(lkjwt.BINARY), "--threads", str(threads)]
        self.process = Process(name, argv, env, directory)
        self.started_at = time.monotonic()
        wait_until(lambda: not self.process.running() or len(self.worker_pids()) == workers,
                   f"{name}: {workers} workers forked", timeout=20)
        self.process.require_running()
        wait_until(lambda: not self.process.running() or self.process.stderr().count(self.STARTED) >= workers,
                   f"{name}: {workers} workers starting", timeout=20)
        self.process.require_running()
        wait_until(self._answers_healthz, f"{name} answering /healthz over FastCGI", timeout=20)
        self.initial_pids = self.worker_pids()

    def _answers_healthz(self) -> bool:
        try:
            return get_status(self.upstream, "/healthz") == 200
        except OSError:
            return False

    @property
    def pid(self) -> int:
        return self.process.pid

    def worker_pids(self) -> list[int]:
        return children_of(self.process.pid)

    def stderr(self) -> str:
        return self.process.stderr()

    def stop(self, timeout: float = 20.0) -> list[int]:
        """SIGTERM to multiwatch, which asks every worker to stop gracefully (SIGUSR1) and does not
        respawn them; returns the PIDs of the workers that were running."""
        workers = self.worker_pids()
        if self.process.running():
            self.process.send_signal(signal.SIGTERM)
        wait_until(lambda: not self.process.running() and not any(pid_alive(pid) for pid in workers),
                   f"{self.name} and its workers stopping after SIGTERM", timeout=timeout)
        self.process.wait(timeout)
        return sorted(workers)

    def kill_all(self) -> None:
        """Last resort for teardown after a failure: SIGKILL multiwatch and its workers (by PID)."""
        workers = self.worker_pids()
        if self.process.running():
            self.process.popen.kill()
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.popen.wait(10)


class ServiceClient:
    """HTTP requests to the service through a web server at `base_url` + `prefix`."""

    def __init__(self, base_url: str, prefix: str = ""):
        self.base_url = base_url
        self.prefix = prefix

    def post_json(self, endpoint: str, document) -> http_client.Response:
        return http_client.request(self.base_url, "POST", self.prefix + endpoint, http_client.json_bytes(document))


class JobsStack:
    """N workers sharing `store`, nginx (the repository's location snippet) in front."""

    def __init__(self, directory: Path, env: dict, store, *, name: str = "workers", workers: int = 4, threads: int = 4,
                 respawns: int | None = None):
        self.directory = directory
        self.env = env
        self.store = store
        self.name = name
        self.workers = workers
        self.threads = threads
        self.respawns = respawns
        self.socket_path = directory / f"{name}.sock"
        self.generation = 0
        self.pools: list[WorkerPool] = []
        self.pool: WorkerPool | None = None
        self.start_workers()
        self.nginx = Nginx(directory, self.pool.upstream, name=f"nginx-{name}")
        self.client = ServiceClient(self.nginx.base_url)
        self.webhooks = WebhookSender(self.nginx.base_url, lkjwt.API_KEY, lkjwt.API_SECRET)

    def start_workers(self) -> WorkerPool:
        assert self.pool is None, "the workers are running"
        self.generation += 1
        self.pool = WorkerPool(self.env, self.directory, self.socket_path, name=f"{self.name}-{self.generation}",
                               workers=self.workers, threads=self.threads, respawns=self.respawns)
        self.pools.append(self.pool)
        return self.pool

    def stop_workers(self) -> list[int]:
        stopped = self.pool.stop()
        self.pool = None
        return stopped

    def stderr(self) -> str:
        return "".join(pool.stderr() for pool in self.pools)

    def stop(self) -> None:
        self.nginx.stop()
        if self.pool is not None:
            try:
                self.stop_workers()
            except TimeoutError:
                self.pool.kill_all()
                self.pool = None
                raise


class JobsRunner:
    """`lkjwt-fcgi --jobs`: no requests, only the scheduler (for CGI deployments)."""

    def __init__(self, env: dict, directory: Path, name: str = "jobs-runner"):
        self.process = Process(name, [str(lkjwt.BINARY), "--jobs"], env, directory)
        wait_until(lambda: not self.process.running() or "Starting service" in self.process.stderr(),
                   f"{name} starting", timeout=20)
        self.process.require_running()

    def stop(self) -> int:
        return self.process.stop(signal.SIGTERM)


class CGIStack:
    """A plain-CGI deployment: lighttpd runs the binary once per request (through the wrapper script
    of service.py), and `lkjwt-fcgi --jobs` (started separately) runs the timers."""

    def __init__(self, directory: Path, env: dict, store, *, name: str = "cgi"):
        self.directory = directory
        self.env = env
        self.store = store
        self.name = name
        self.cgi_log = directory / f"{name}.stderr"
        self.cgi_log.touch()
        self.server = LighttpdCGI(directory, lkjwt.cgi_wrapper_script(env, self.cgi_log), name=f"lighttpd-{name}")
        self.client = ServiceClient(self.server.base_url, LighttpdCGI.script_name)
        self.webhooks = WebhookSender(self.server.base_url, lkjwt.API_KEY, lkjwt.API_SECRET, prefix=LighttpdCGI.script_name)
        self.runners: list[JobsRunner] = []

    def start_runner(self) -> "JobsRunner":
        runner = JobsRunner(self.env, self.directory, name=f"{self.name}-jobs-{len(self.runners) + 1}")
        self.runners.append(runner)
        return runner

    def cgi_stderr(self) -> str:
        return self.cgi_log.read_text(errors="replace")

    def stderr(self) -> str:
        return self.cgi_stderr() + "".join(runner.process.stderr() for runner in self.runners)

    def stop(self) -> None:
        self.server.stop()
        for runner in self.runners:
            runner.stop()


@dataclass
class CGIResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    stderr: str


def run_cgi(env: dict, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> CGIResponse:
    """One request to the binary as a plain CGI program (contract §1.3): CGI/1.1 variables, body on
    stdin, response on stdout. stdin is a pipe, not a listening socket."""
    variables = {**env, "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": method,
                 "SCRIPT_NAME": path, "REQUEST_URI": path, "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
                 "SERVER_NAME": "localhost", "SERVER_PORT": "80", "CONTENT_LENGTH": str(len(body)),
                 "CONTENT_TYPE": "application/json"}
    for name, value in (headers or {}).items():
        variables["HTTP_" + name.upper().replace("-", "_")] = value
    done = subprocess.run([str(lkjwt.BINARY)], env=variables, input=body, capture_output=True, timeout=30)
    assert done.returncode == 0, (done.returncode, done.stderr.decode(errors="replace"))
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    parsed = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    status = int(parsed.get("status", "200").split()[0])
    return CGIResponse(status, parsed, payload, done.stderr.decode(errors="replace"))


# ---------------------------------------------------------------------------------------------
# Members and delegations.

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


# ---------------------------------------------------------------------------------------------
# Fixtures (imported by the test modules).

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
