"""Throughput, CPU per request, CGI start-up, latency, connection reuse and memory of lkjwt-fcgi
behind nginx, against a minimal C libfcgi responder (see bench/run).

Service, responder and nginx run on one CPU, the load (wrk, the fakes, this script) on the other;
the compared scenarios alternate in rounds and every round prints its own figures. Reuses the
end-to-end harness (e2e/): the same fakes, the same nginx configuration around the
repository's snippet, the same spawn-fcgi script. Prints one summary table.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matrix_client  # noqa: E402
import service as lkjwt  # noqa: E402
from fakes.homeserver import FakeHomeserver  # noqa: E402
from fakes.sfu import FakeSFU  # noqa: E402
from processes import Process, clean_environment  # noqa: E402
from tls import self_signed_certificate  # noqa: E402
from pinning import LOAD_CPU, SERVICE_CPU, on_cpu, pin, pin_this_process, require_two_cpus  # noqa: E402
from webservers import Nginx  # noqa: E402

CONCURRENCY = 32
HEALTHZ_RATIO_TARGET = 0.85
CGI_TARGET_MS = 4.0
TOKEN_CPU_TARGET_US = 150
RSS_TARGET_MIB = 30


@dataclass
class WrkResult:
    requests: int
    requests_per_second: float
    failures: int  # non-2xx answers and socket errors
    p50_ms: float | None
    p99_ms: float | None


def wrk(url: str, seconds: int, connections: int, script: Path | None = None, latency: bool = False,
        prefix: list[str] | None = None) -> WrkResult:
    """`prefix`: a command wrk runs under, e.g. `ip netns exec NAME` to reach a network namespace."""
    threads = min(connections, 2)
    command = (prefix or []) + ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "15s"]
    if latency:
        command.append("--latency")
    if script:
        command += ["-s", str(script)]
    output = subprocess.run(command + [url], check=True, capture_output=True, text=True).stdout
    requests = int(re.search(r"(\d+) requests in", output).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    failures = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, socket_errors.groups())) if socket_errors else 0)
    return WrkResult(requests, float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)), failures,
                     _percentile(output, "50%"), _percentile(output, "99%"))


def _percentile(output: str, label: str) -> float | None:
    match = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if not match:
        return None
    return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]


def post_script(directory: Path, body: dict) -> Path:
    """A wrk script that POSTs `body` as JSON."""
    script = directory / "post.lua"
    script.write_text('wrk.method = "POST"\n'
                      'wrk.headers["Content-Type"] = "application/json"\n'
                      f"wrk.body = [==[{json.dumps(body)}]==]\n")
    return script


@dataclass
class Fakes:
    directory: Path
    cert: Path
    homeserver: FakeHomeserver
    sfu: FakeSFU


@contextmanager
def started_fakes(prefix: str):
    """A temporary directory holding a self-signed certificate, the fake homeserver (TLS with it) and
    the fake SFU, stopped again on exit; `prefix` names the directory."""
    with tempfile.TemporaryDirectory(prefix=prefix) as temporary:
        directory = Path(temporary)
        cert, key = self_signed_certificate(directory)
        homeserver = FakeHomeserver(str(cert), str(key)).start()
        try:
            sfu = FakeSFU(lkjwt.API_KEY, lkjwt.API_SECRET).start()
            try:
                yield Fakes(directory, cert, homeserver, sfu)
            finally:
                sfu.stop()
        finally:
            homeserver.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run) -> tuple[WrkResult, float]:
    """The wrk result of `run()` and the CPU time per request (µs) that `pid` spent meanwhile."""
    before = cpu_seconds(pid)
    result = run()
    return result, (cpu_seconds(pid) - before) * 1e6 / max(result.requests, 1)


def vm_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def start_minimal_responder(binary: Path, directory: Path, threads: int) -> lkjwt.Service:
    socket_path = directory / "minimal.sock"
    process = Process("minimal-responder", ["spawn-fcgi", "-n", "-s", str(socket_path), "-M", "0600", "--",
                                            str(binary), str(threads)], clean_environment(), directory)
    return lkjwt.Service(process, f"unix:{socket_path}").wait_until_started()


def cgi_request(binary: Path, env: dict) -> tuple[float, float]:
    """One plain CGI `GET /healthz`: (wall seconds, the child's CPU seconds). posix_spawn, not
    subprocess: forking this interpreter would cost more than the C responder's whole request."""
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr, open(os.devnull, "rb") as stdin:
        started = time.perf_counter()
        pid = os.posix_spawn(str(binary), [str(binary)], env, file_actions=[
            (os.POSIX_SPAWN_DUP2, stdin.fileno(), 0), (os.POSIX_SPAWN_DUP2, stdout.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, stderr.fileno(), 2)])
        _, status, usage = os.wait4(pid, 0)
        wall = time.perf_counter() - started
        stdout.seek(0)
        answer = stdout.read()
        if os.waitstatus_to_exitcode(status) != 0 or not answer.startswith(b"Status: 200"):
            stderr.seek(0)
            raise RuntimeError(f"{binary} as CGI: status {status}, {answer[:80]!r}, {stderr.read()[-500:]!r}")
    return wall, usage.ru_utime + usage.ru_stime


def cgi_median(binary: Path, env: dict, count: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of `count` CGI requests, started from the service CPU (this
    thread moves there meanwhile; the children inherit it)."""
    pin_this_process(SERVICE_CPU)
    try:
        runs = [cgi_request(binary, env) for _ in range(count)]
    finally:
        pin_this_process(LOAD_CPU)
    return (statistics.median(wall for wall, _ in runs) * 1000, statistics.median(cpu for _, cpu in runs) * 1000)


def cgi_environment(directory: Path, service_env: dict) -> dict:
    """What a web server hands a CGI program for `GET /healthz`, plus the service's configuration as
    a CGI deployment has it (a SQLite job store: plain CGI has no process to keep :memory: in)."""
    return {**service_env, "LIVEKIT_JOBS_DB": str(directory / "cgi-jobs.sqlite"), "LIVEKIT_LOG_LEVEL": "info",
            "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "/healthz", "REQUEST_URI": "/healthz", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "CONTENT_LENGTH": "0"}


@dataclass
class Round:
    baseline: tuple[WrkResult, float]
    healthz: tuple[WrkResult, float]
    baseline_cgi: tuple[float, float]  # wall ms, CPU ms
    cgi: tuple[float, float]
    tokens: tuple[WrkResult, float]

    @property
    def ratio(self) -> float:
        return self.healthz[0].requests_per_second / self.baseline[0].requests_per_second


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responder", type=Path, required=True, help="the compiled minimal-responder.c")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of the compared runs, alternating within each")
    parser.add_argument("--cgi-requests", type=int, default=40, help="CGI requests per binary and round")
    parser.add_argument("--threads", type=int, default=lkjwt.THREADS, help="worker threads of both responders")
    parser.add_argument("--log-level", default="info",
                        help="LIVEKIT_LOG_LEVEL of the service (info, the default, logs every request)")
    arguments = parser.parse_args()
    seconds = arguments.seconds
    require_two_cpus()
    pin_this_process(LOAD_CPU)

    def load(url: str, connections: int = CONCURRENCY, script: Path | None = None, latency: bool = False) -> WrkResult:
        return wrk(url, seconds, connections, script, latency=latency, prefix=on_cpu(LOAD_CPU))

    with started_fakes("lkjwt-bench-") as peers:
        directory, cert, homeserver, sfu = peers.directory, peers.cert, peers.homeserver, peers.sfu
        running = []
        try:
            env = lkjwt.service_environment(livekit_url=sfu.url, full_access="full-access.example.org",
                                            ca_file=cert, LIVEKIT_LOG_LEVEL=arguments.log_level)
            service = lkjwt.start_under_spawn_fcgi(env, directory, threads=arguments.threads)
            running.append(service)
            responder = start_minimal_responder(arguments.responder, directory, arguments.threads)
            running.append(responder)
            # One nginx worker each: the web server shares the service's CPU, as on a small host.
            nginx_service = Nginx(directory, service.upstream, name="nginx-lkjwt", worker_processes=1, access_log=False)
            running.append(nginx_service)
            nginx_minimal = Nginx(directory, responder.upstream, name="nginx-minimal", worker_processes=1,
                                  access_log=False)
            running.append(nginx_minimal)
            for process in running:
                pin(process.process.pid, SERVICE_CPU)
            cgi_env = cgi_environment(directory, env)

            # The restricted user's homeserver is not full-access: the token needs no CreateRoom.
            account = matrix_client.register(homeserver, "bench")
            script = post_script(directory, matrix_client.get_token_body(account))

            # Compared scenarios alternate within each round (and swap order every other round): on a
            # shared machine the background load changes within seconds and would otherwise favour
            # whichever ran in the quieter moment.
            rounds = []
            homeserver.reset_counters()
            for number in range(arguments.rounds):
                def baseline():
                    return measured(responder.process.pid, lambda: load(f"{nginx_minimal.base_url}/healthz"))

                def healthz():
                    return measured(service.process.pid, lambda: load(f"{nginx_service.base_url}/healthz"))

                if number % 2 == 0:
                    baseline_run, healthz_run = baseline(), healthz()
                    baseline_cgi = cgi_median(arguments.responder, cgi_env, arguments.cgi_requests)
                    cgi = cgi_median(lkjwt.BINARY, cgi_env, arguments.cgi_requests)
                else:
                    healthz_run, baseline_run = healthz(), baseline()
                    cgi = cgi_median(lkjwt.BINARY, cgi_env, arguments.cgi_requests)
                    baseline_cgi = cgi_median(arguments.responder, cgi_env, arguments.cgi_requests)
                tokens = measured(service.process.pid,
                                  lambda: load(f"{nginx_service.base_url}/get_token", script=script))
                rounds.append(Round(baseline_run, healthz_run, baseline_cgi, cgi, tokens))
            handshakes, userinfo = homeserver.tls_handshakes, len(homeserver.userinfo_requests)

            healthz_c1 = load(f"{nginx_service.base_url}/healthz", 1, latency=True)
            tokens_c1 = load(f"{nginx_service.base_url}/get_token", 1, script, latency=True)
            rss = vm_rss_mib(service.process.pid)
            baseline_rss = vm_rss_mib(responder.process.pid)
        finally:
            for process in reversed(running):
                process.stop()

    rows = []
    for number, each in enumerate(rounds, 1):
        (baseline, baseline_cpu), (healthz, healthz_cpu) = each.baseline, each.healthz
        (tokens, token_cpu) = each.tokens
        rows += [
            (f"round {number}: GET /healthz, minimal C responder / lkjwt-fcgi",
             f"{baseline.requests_per_second:,.0f} / {healthz.requests_per_second:,.0f} req/s, "
             f"CPU {baseline_cpu:.0f} / {healthz_cpu:.0f} µs per request", "", None),
            (f"round {number}:   /healthz ratio", f"{each.ratio:.2f}", f">= {HEALTHZ_RATIO_TARGET}",
             each.ratio >= HEALTHZ_RATIO_TARGET),
            (f"round {number}: CGI GET /healthz, minimal C responder / lkjwt-fcgi",
             f"CPU {each.baseline_cgi[1]:.2f} / {each.cgi[1]:.2f} ms "
             f"(wall {each.baseline_cgi[0]:.2f} / {each.cgi[0]:.2f} ms)", f"<= {CGI_TARGET_MS} ms",
             each.cgi[1] <= CGI_TARGET_MS),
            (f"round {number}: POST /get_token, restricted user",
             f"{tokens.requests_per_second:,.0f} req/s, service CPU {token_cpu:.0f} µs per token",
             f"<= {TOKEN_CPU_TARGET_US} µs", token_cpu <= TOKEN_CPU_TARGET_US),
        ]
    ratio = statistics.median(each.ratio for each in rounds)
    # CPU, not wall time: on a loaded machine a process that runs for milliseconds waits for a CPU
    # for longer than that, one that runs for half a millisecond rarely does.
    cgi_ms = statistics.median(each.cgi[1] for each in rounds)
    baseline_cgi_ms = statistics.median(each.baseline_cgi[1] for each in rounds)
    token_cpu = statistics.median(each.tokens[1] for each in rounds)
    handshakes_per_1000 = handshakes * 1000 / max(userinfo, 1)
    rows += [
        ("median /healthz ratio, lkjwt-fcgi / minimal responder", f"{ratio:.2f}", f">= {HEALTHZ_RATIO_TARGET}",
         ratio >= HEALTHZ_RATIO_TARGET),
        ("median CGI GET /healthz, CPU", f"{cgi_ms:.2f} ms (minimal responder {baseline_cgi_ms:.2f} ms)",
         f"<= {CGI_TARGET_MS} ms", cgi_ms <= CGI_TARGET_MS),
        ("median service CPU per token", f"{token_cpu:.0f} µs", f"<= {TOKEN_CPU_TARGET_US} µs",
         token_cpu <= TOKEN_CPU_TARGET_US),
        ("GET /healthz latency, c=1", f"p50 {healthz_c1.p50_ms:.2f} ms, p99 {healthz_c1.p99_ms:.2f} ms", "", None),
        ("POST /get_token latency, c=1", f"p50 {tokens_c1.p50_ms:.2f} ms, p99 {tokens_c1.p99_ms:.2f} ms", "", None),
        ("TLS connections to the homeserver per 1000 tokens",
         f"{handshakes_per_1000:.2f} ({handshakes} for {userinfo:,} requests)", f"<= {arguments.threads}",
         handshakes_per_1000 <= arguments.threads),
        ("lkjwt-fcgi VmRSS after the runs", f"{rss:.1f} MiB (minimal responder {baseline_rss:.1f} MiB)",
         f"< {RSS_TARGET_MIB} MiB", rss < RSS_TARGET_MIB),
        load_average_row(),
    ]
    all_runs = [run for each in rounds for run, _ in (each.baseline, each.healthz, each.tokens)] + [healthz_c1, tokens_c1]
    return report(
        f"\nnginx (1 worker) → FastCGI unix socket, {arguments.threads} threads per responder, service + nginx "
        f"on CPU {SERVICE_CPU}, load on CPU {LOAD_CPU}; log level {arguments.log_level}, wrk c={CONCURRENCY} "
        f"{seconds} s per run, {arguments.cgi_requests} CGI requests per binary and round, {lkjwt.BINARY}",
        rows, sum(run.failures for run in all_runs))


def load_average_row() -> tuple[str, str, str, None]:
    """A row for the end of a table: figures taken on a busy machine are not comparable."""
    return ("load average at the end", " ".join(f"{value:.1f}" for value in os.getloadavg()), "", None)


def report(heading: str, rows: list[tuple[str, str, str, bool | None]], failures: int, failed: str = "requests") -> int:
    """Prints the heading and the table, and says so when any of the measured requests failed (wrk's
    non-2xx answers and socket errors): the exit status, 1 then, for the figures are not valid."""
    print(heading)
    print_table(rows)
    if failures:
        print(f"\n{failures} {failed} failed (non-2xx or socket errors): the figures above are not valid")
        return 1
    return 0


def print_table(rows: list[tuple[str, str, str, bool | None]]) -> None:
    """Rows of (measurement, value, target, target met or None when there is no target)."""
    name_width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    for name, value, target, met in rows:
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{name:<{name_width}}  {value:<{value_width}}  {target:<10} {verdict}".rstrip())

if __name__ == "__main__":
    sys.exit(main())
