"""Throughput, latency, connection reuse and memory of lkjwt-fcgi behind nginx (see bench/run).

Reuses the end-to-end harness (e2e/): the same fakes, the same nginx configuration around the
repository's snippet, the same spawn-fcgi script. Prints one summary table.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

import matrix_client  # noqa: E402
import service as lkjwt  # noqa: E402
from fakes.homeserver import FakeHomeserver  # noqa: E402
from fakes.sfu import FakeSFU  # noqa: E402
from processes import Process, clean_environment  # noqa: E402
from tls import self_signed_certificate  # noqa: E402
from webservers import Nginx  # noqa: E402

CONCURRENCY = 32
HEALTHZ_RATIO_TARGET = 0.85
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (all threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(pid: int, run) -> tuple[WrkResult, float]:
    """The wrk result of `run()` and the CPU time per request (µs) that `pid` spent meanwhile."""
    before = cpu_seconds(pid)
    result = run()
    return result, (cpu_seconds(pid) - before) * 1e6 / max(result.requests, 1)


def median(runs: list[tuple[WrkResult, float]]) -> tuple[WrkResult, float]:
    """The run with the median requests/s."""
    return sorted(runs, key=lambda run: run[0].requests_per_second)[len(runs) // 2]


def vm_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE).group(1)) / 1024


def start_minimal_responder(binary: Path, directory: Path, threads: int) -> lkjwt.Service:
    socket_path = directory / "minimal.sock"
    process = Process("minimal-responder", ["spawn-fcgi", "-n", "-s", str(socket_path), "-M", "0600", "--",
                                            str(binary), str(threads)], clean_environment(), directory)
    return lkjwt.Service(process, f"unix:{socket_path}").wait_until_started()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--responder", type=Path, required=True, help="the compiled minimal-responder.c")
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating /healthz runs per responder")
    parser.add_argument("--threads", type=int, default=lkjwt.THREADS, help="worker threads of both responders")
    parser.add_argument("--log-level", default="info",
                        help="LIVEKIT_LOG_LEVEL of the service (info, the default, logs every request)")
    arguments = parser.parse_args()
    seconds = arguments.seconds

    with tempfile.TemporaryDirectory(prefix="lkjwt-bench-") as temporary:
        directory = Path(temporary)
        cert, key = self_signed_certificate(directory)
        homeserver = FakeHomeserver(str(cert), str(key)).start()
        sfu = FakeSFU(lkjwt.API_KEY, lkjwt.API_SECRET).start()
        running = []
        try:
            env = lkjwt.service_environment(livekit_url=sfu.url, full_access="full-access.example.org",
                                            ca_file=cert, LIVEKIT_LOG_LEVEL=arguments.log_level)
            service = lkjwt.start_under_spawn_fcgi(env, directory, threads=arguments.threads)
            running.append(service)
            responder = start_minimal_responder(arguments.responder, directory, arguments.threads)
            running.append(responder)
            # Production-like nginx: one worker per core, no access log.
            nginx_service = Nginx(directory, service.upstream, name="nginx-lkjwt", worker_processes="auto",
                                  access_log=False)
            running.append(nginx_service)
            nginx_minimal = Nginx(directory, responder.upstream, name="nginx-minimal",
                                  worker_processes="auto", access_log=False)
            running.append(nginx_minimal)

            # Alternating rounds, compared by their medians: on a shared machine the background load
            # changes within seconds and would otherwise favour whichever ran in the quieter moment.
            baseline_runs, healthz_runs = [], []
            for _ in range(arguments.rounds):
                baseline_runs.append(measured(
                    responder.process.pid, lambda: wrk(f"{nginx_minimal.base_url}/healthz", seconds, CONCURRENCY)))
                healthz_runs.append(measured(
                    service.process.pid, lambda: wrk(f"{nginx_service.base_url}/healthz", seconds, CONCURRENCY)))
            baseline, baseline_cpu = median(baseline_runs)
            healthz, healthz_cpu = median(healthz_runs)

            account = matrix_client.register(homeserver, "bench")
            script = post_script(directory, matrix_client.get_token_body(account))
            homeserver.reset_counters()
            tokens = wrk(f"{nginx_service.base_url}/get_token", seconds, CONCURRENCY, script)
            handshakes, userinfo = homeserver.tls_handshakes, len(homeserver.userinfo_requests)

            healthz_c1 = wrk(f"{nginx_service.base_url}/healthz", seconds, 1, latency=True)
            tokens_c1 = wrk(f"{nginx_service.base_url}/get_token", seconds, 1, script, latency=True)
            rss = vm_rss_mib(service.process.pid)
            baseline_rss = vm_rss_mib(responder.process.pid)
        finally:
            for process in reversed(running):
                process.stop()
            sfu.stop()
            homeserver.stop()

    ratio = healthz.requests_per_second / baseline.requests_per_second
    handshakes_per_1000 = handshakes * 1000 / max(userinfo, 1)
    rows = [
        (f"GET /healthz, minimal C libfcgi responder, c=32 (median of {arguments.rounds})",
         f"{baseline.requests_per_second:,.0f} req/s ({per_round(baseline_runs)})", "", None),
        (f"GET /healthz, lkjwt-fcgi, c=32 (median of {arguments.rounds})",
         f"{healthz.requests_per_second:,.0f} req/s ({per_round(healthz_runs)})", "", None),
        ("  lkjwt-fcgi / minimal responder", f"{ratio:.2f}", f">= {HEALTHZ_RATIO_TARGET}",
         ratio >= HEALTHZ_RATIO_TARGET),
        ("  responder CPU time per /healthz", f"{healthz_cpu:.0f} µs (minimal responder {baseline_cpu:.0f} µs)",
         "", None),
        ("POST /get_token, restricted user, c=32", f"{tokens.requests_per_second:,.0f} req/s", "", None),
        ("GET /healthz latency, c=1", f"p50 {healthz_c1.p50_ms:.2f} ms, p99 {healthz_c1.p99_ms:.2f} ms", "", None),
        ("POST /get_token latency, c=1", f"p50 {tokens_c1.p50_ms:.2f} ms, p99 {tokens_c1.p99_ms:.2f} ms", "", None),
        ("TLS connections to the homeserver per 1000 tokens",
         f"{handshakes_per_1000:.2f} ({handshakes} for {userinfo:,} requests)", f"<= {arguments.threads}",
         handshakes_per_1000 <= arguments.threads),
        ("lkjwt-fcgi VmRSS after the runs", f"{rss:.1f} MiB (minimal responder {baseline_rss:.1f} MiB)",
         f"< {RSS_TARGET_MIB} MiB", rss < RSS_TARGET_MIB),
    ]
    print(f"\nnginx (1 worker per core) → FastCGI unix socket, {arguments.threads} threads per responder, "
          f"log level {arguments.log_level}, wrk {seconds} s per run, {os.cpu_count()} CPUs")
    print_table(rows)
    all_runs = [run for run, _ in baseline_runs + healthz_runs] + [tokens, healthz_c1, tokens_c1]
    failures = sum(run.failures for run in all_runs)
    if failures:
        print(f"\n{failures} requests failed (non-2xx or socket errors): the figures above are not valid")
        return 1
    return 0


def per_round(runs: list[tuple[WrkResult, float]]) -> str:
    return ", ".join(f"{run.requests_per_second / 1000:.1f}k" for run, _ in runs)


def print_table(rows: list[tuple[str, str, str, bool | None]]) -> None:
    """Rows of (measurement, value, target, target met or None when there is no target)."""
    name_width = max(len(row[0]) for row in rows)
    value_width = max(len(row[1]) for row in rows)
    for name, value, target, met in rows:
        verdict = "" if met is None else ("met" if met else "MISSED")
        print(f"{name:<{name_width}}  {value:<{value_width}}  {target:<10} {verdict}".rstrip())

if __name__ == "__main__":
    sys.exit(main())
