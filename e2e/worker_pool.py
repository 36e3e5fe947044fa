"""The service with delayed-leave jobs as the tests run it: several FastCGI workers sharing one
socket and store (spawn-fcgi -n + multiwatch, nginx in front), and the `--jobs` runner."""

import os
import signal
import time
from pathlib import Path

import http_client
import service as lkjwt
from fakes.client_server_api import FakeClientServerAPI
from fakes.homeserver import FakeHomeserver
from fakes.participants import ParticipantSFU
from fastcgi import get_status
from processes import Process, wait_until
from webhooks import WebhookSender
from webservers import Nginx

MULTIWATCH = "/usr/bin/multiwatch"


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
