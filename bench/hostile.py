"""Legitimate /get_token throughput and p99 latency while 64 silent servers are being asked about,
against the same load unattacked (contract §13.3; see bench/run).

One lkjwt-fcgi process on default settings (16 threads) behind nginx, both pinned to CPU 0; the
legitimate load (wrk, a user of a homeserver that answers) and the attacker (64 requests always
in flight, each naming its own server on 127.0.0.2–127.0.0.65 that accepts TCP and never answers)
pinned to CPU 1. Attacked and unattacked runs alternate in rounds; each round prints its ratios.
"""

import argparse
import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import http_client  # noqa: E402
import matrix_client  # noqa: E402
import service as lkjwt  # noqa: E402
from bench import load_average_row, post_script, report, started_fakes, wrk  # noqa: E402
from pinning import LOAD_CPU, SERVICE_CPU, on_cpu, pin, pin_this_process, require_two_cpus  # noqa: E402
from fakes.silent import SilentTCPServers  # noqa: E402
from webservers import Nginx  # noqa: E402

SILENT_ADDRESSES = [f"127.0.0.{last}" for last in range(2, 66)]
THROUGHPUT_TARGET = 0.90
ADDED_P99_TARGET_MS = 1000.0
LOAD_CONNECTIONS = 8



class Attacker:
    """64 threads, each asking for a token naming its own silent server, again as soon as the
    previous request ended (401 after the budget), or 1 s after a refusal (503 at once): re-sending
    refused requests without pause would be a flood of cheap requests, a different attack (any
    request floods a service), and would measure this Python client's CPU on the load CPU."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.stop_event = threading.Event()
        self.answers: dict[int, int] = {}
        self.slowest = 0.0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(address,), daemon=True) for address in SILENT_ADDRESSES]

    def _run(self, address: str) -> None:
        while not self.stop_event.is_set():
            body = http_client.json_bytes({
                "room_id": "!room:example.org", "slot_id": "m.call#ROOM",
                "openid_token": {"access_token": secrets.token_hex(8), "matrix_server_name": address},
                "member": {"id": "m", "claimed_user_id": f"@mallory:{address}", "claimed_device_id": "D"},
            })
            started = time.monotonic()
            response = http_client.request(self.base_url, "POST", "/get_token", body, timeout=60)
            elapsed = time.monotonic() - started
            with self.lock:
                self.answers[response.status] = self.answers.get(response.status, 0) + 1
                self.slowest = max(self.slowest, elapsed)
            if response.status != 401:
                self.stop_event.wait(1.0)

    def run_until_stdin_closes(self) -> None:
        for thread in self.threads:
            thread.start()
        sys.stdin.read()
        self.stop_event.set()
        for thread in self.threads:
            thread.join()
        print(json.dumps({"answers": self.answers, "slowest": self.slowest}))


class AttackerProcess:
    """The attacker in a process of its own: sharing this process's interpreter lock with the fake
    homeserver would slow the legitimate requests' homeserver, not the service."""

    def __init__(self, base_url: str):
        self.process = subprocess.Popen(
            [*on_cpu(LOAD_CPU), sys.executable, __file__, "--attack", base_url],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def stop(self) -> dict:
        """Waits for the requests in flight (the last end with their 10 s budget)."""
        output, _ = self.process.communicate(timeout=60)
        return json.loads(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--attack", metavar="BASE_URL", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.attack:
        Attacker(arguments.attack).run_until_stdin_closes()
        return 0
    require_two_cpus()
    pin_this_process(LOAD_CPU)

    with started_fakes("lkjwt-bench-hostile-") as peers:
        directory, cert, homeserver, sfu = peers.directory, peers.cert, peers.homeserver, peers.sfu
        silent = SilentTCPServers([(address, 8448) for address in SILENT_ADDRESSES])
        running = []
        try:
            # The homeserver is restricted (no CreateRoom): the figures are about verification.
            env = lkjwt.service_environment(livekit_url=sfu.url, full_access="full-access.example.org", ca_file=cert,
                                            LIVEKIT_LOG_LEVEL="warn", LIVEKIT_IP_RANGE_ALLOWLIST="127.0.0.0/8")
            service = lkjwt.start_under_spawn_fcgi(env, directory)
            running.append(service)
            nginx = Nginx(directory, service.upstream, name="nginx-hostile", worker_processes=1, access_log=False)
            running.append(nginx)
            pin(service.process.pid, SERVICE_CPU)
            pin(nginx.process.pid, SERVICE_CPU)

            account = matrix_client.register(homeserver, "bench")
            script = post_script(directory, matrix_client.get_token_body(account))
            # Answered once: from now on a homeserver known to answer.
            assert http_client.request(nginx.base_url, "POST", "/get_token",
                                       http_client.json_bytes(matrix_client.get_token_body(account))).status == 200

            def load():
                return wrk(f"{nginx.base_url}/get_token", arguments.seconds, LOAD_CONNECTIONS, script, latency=True,
                           prefix=on_cpu(LOAD_CPU))

            rounds, failures, attack_answers, slowest_attack = [], 0, {}, 0.0
            for _ in range(arguments.rounds):
                quiet = load()
                attacker = AttackerProcess(nginx.base_url)
                time.sleep(1.0)
                attacked = load()
                attack = attacker.stop()
                failures += quiet.failures + attacked.failures
                for status, count in attack["answers"].items():
                    attack_answers[int(status)] = attack_answers.get(int(status), 0) + count
                slowest_attack = max(slowest_attack, attack["slowest"])
                rounds.append((quiet, attacked))
            connections = silent.total()
        finally:
            for process in reversed(running):
                process.stop()
            silent.stop()

    rows = []
    for number, (quiet, attacked) in enumerate(rounds, 1):
        ratio = attacked.requests_per_second / quiet.requests_per_second
        added = attacked.p99_ms - quiet.p99_ms
        rows.append((f"round {number}: unattacked", f"{quiet.requests_per_second:,.0f} req/s, p99 {quiet.p99_ms:.1f} ms", "", None))
        rows.append((f"round {number}: 64 silent servers asked about",
                     f"{attacked.requests_per_second:,.0f} req/s, p99 {attacked.p99_ms:.1f} ms", "", None))
        rows.append((f"round {number}: throughput ratio", f"{ratio:.2f}", f">= {THROUGHPUT_TARGET}", ratio >= THROUGHPUT_TARGET))
        rows.append((f"round {number}: added p99", f"{added:+.1f} ms", f"< {ADDED_P99_TARGET_MS:.0f} ms",
                     added < ADDED_P99_TARGET_MS))
    ratios = sorted(attacked.requests_per_second / quiet.requests_per_second for quiet, attacked in rounds)
    middle = ratios[len(ratios) // 2]
    rows.append(("median throughput ratio", f"{middle:.2f}", f">= {THROUGHPUT_TARGET}", middle >= THROUGHPUT_TARGET))
    rows.append(load_average_row())
    statuses = ", ".join(f"{status}: {count}" for status, count in sorted(attack_answers.items()))
    rows.append(("attacking requests answered", statuses, "", None))
    rows.append(("slowest attacking request", f"{slowest_attack:.2f} s", "<= 10.5 s", slowest_attack <= 10.5))
    rows.append(("connections the silent servers accepted", f"{connections}", "", None))
    return report(f"\nPOST /get_token of a known homeserver, wrk c={LOAD_CONNECTIONS} {arguments.seconds} s per run; "
                  f"service + nginx on CPU {SERVICE_CPU}, load + attacker on CPU {LOAD_CPU}; {lkjwt.THREADS} threads",
                  rows, failures, failed="legitimate requests")


if __name__ == "__main__":
    sys.exit(main())
