"""get_token through a real Synapse 1.163.2's MSC4512 proxy against the standalone endpoint (see
bench/run): the service's CPU per token on each path, and the latency Synapse's proxying adds.

One Synapse (e2e/synapse.py) with the service as its application service (e2e/appservice.py): the
registration `lkjwt-fcgi registration` prints, nginx with the shipped application-service snippet
where its proxy_url points. Three scenarios, alternated in rounds:
- standalone: POST /get_token with an OpenID token of that Synapse, which the service verifies at
  Synapse's federation userinfo endpoint (TLS, kept-alive connections; full access, so CreateRoom too);
- through Synapse: POST /_matrix/client/v1/rtc/livekit/get_token with the user's access token to
  Synapse, which forwards it to the service; the service asks Synapse `is_joined`, then CreateRoom;
- direct: the same request to nginx as Synapse forwards it (hs_token, X-Matrix-User-Identifier),
  to separate Synapse's proxying from the service's own work.
The service and nginx are pinned to CPU 0; wrk, Synapse and the fake SFU to CPU 1.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import appservice  # noqa: E402
import synapse  # noqa: E402
from bench import cpu_seconds, load_average_row, report, wrk  # noqa: E402
from hostile import pin  # noqa: E402
from tls import self_signed_certificate  # noqa: E402

CONNECTIONS = 4
SERVICE_CPU, LOAD_CPU = "0", "1"
SCENARIOS = ("standalone", "through Synapse", "direct")


def post_script(path: Path, body: dict, headers: dict[str, str]) -> Path:
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"']
    lines += [f'wrk.headers["{name}"] = "{value}"' for name, value in headers.items()]
    lines.append(f"wrk.body = [==[{json.dumps(body)}]==]")
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args()
    reason = appservice.as_mode_missing_reason()
    if reason:
        print(f"skipped: {reason}")
        return 0
    os.sched_setaffinity(0, {int(LOAD_CPU)})

    with tempfile.TemporaryDirectory(prefix="lkjwt-bench-appservice-") as temporary:
        directory = Path(temporary)
        stack = appservice.start_stack(directory, tls=self_signed_certificate(directory), log_level="warn",
                                       synapse_log_level="WARNING")
        try:
            pin(stack.service.process.pid, SERVICE_CPU)
            pin(stack.appservice_nginx.process.pid, SERVICE_CPU)
            pin(stack.public_nginx.process.pid, SERVICE_CPU)
            pin(stack.synapse.process.pid, LOAD_CPU)

            alice = stack.synapse.register()
            room = alice.create_room()
            openid = alice.call("POST", f"/_matrix/client/v3/user/{quote(alice.user_id)}/openid/request_token", {})
            common = {"room_id": room, "slot_id": "m.call#ROOM"}
            as_body = {"url": stack.sfu.url, "member_id": "member-1", **common}
            standalone_body = {**common, "openid_token": openid,
                               "member": {"id": "member-1", "claimed_user_id": alice.user_id,
                                          "claimed_device_id": alice.device_id}}
            targets = {
                "standalone": (f"{stack.public_nginx.base_url}/get_token",
                               post_script(directory / "standalone.lua", standalone_body, {})),
                "through Synapse": (f"{stack.synapse.client_url}/_matrix/client/v1/rtc/livekit/get_token",
                                    post_script(directory / "synapse.lua", as_body,
                                                {"Authorization": f"Bearer {alice.access_token}"})),
                "direct": (f"{stack.appservice_nginx.base_url}/_matrix/client/v1/rtc/livekit/get_token",
                           post_script(directory / "direct.lua", as_body,
                                       {"Authorization": f"Bearer {stack.hs_token}",
                                        "X-Matrix-User-Identifier": alice.user_id})),
            }
            # Once each, so that no run pays for a first connection or a cold cache.
            for name, (url, script) in targets.items():
                warm = wrk(url, 3, 1, script, prefix=["taskset", "-c", LOAD_CPU])
                assert warm.requests and not warm.failures, (name, warm, stack.service_log()[-2000:])

            rounds, failures = [], 0
            for _ in range(arguments.rounds):
                figures = {}
                for name in SCENARIOS:
                    url, script = targets[name]
                    before = cpu_seconds(stack.service.process.pid)
                    result = wrk(url, arguments.seconds, CONNECTIONS, script, latency=True,
                                 prefix=["taskset", "-c", LOAD_CPU])
                    cpu_us = (cpu_seconds(stack.service.process.pid) - before) * 1e6 / max(result.requests, 1)
                    failures += result.failures
                    figures[name] = (result, cpu_us)
                rounds.append(figures)
        finally:
            stack.stop()

    rows = []
    for number, figures in enumerate(rounds, 1):
        for name in SCENARIOS:
            result, cpu_us = figures[name]
            rows.append((f"round {number}: {name}", f"{result.requests_per_second:,.0f} req/s, p50 {result.p50_ms:.2f} ms, "
                         f"p99 {result.p99_ms:.2f} ms, service CPU {cpu_us:.0f} µs/token", "", None))
        synapse_added = figures["through Synapse"][0].p50_ms - figures["direct"][0].p50_ms
        cpu_ratio = figures["through Synapse"][1] / figures["standalone"][1]
        rows.append((f"round {number}: latency Synapse adds (p50)", f"{synapse_added:+.2f} ms", "", None))
        rows.append((f"round {number}: service CPU, AS / standalone", f"{cpu_ratio:.2f}", "", None))

    def middle(values: list[float]) -> float:
        return sorted(values)[len(values) // 2]

    for name in SCENARIOS:
        rows.append((f"median service CPU per token: {name}", f"{middle([f[name][1] for f in rounds]):.0f} µs", "", None))
    rows.append(("median latency Synapse adds (p50)",
                 f"{middle([f['through Synapse'][0].p50_ms - f['direct'][0].p50_ms for f in rounds]):+.2f} ms", "", None))
    rows.append(load_average_row())
    return report(f"\nget_token, wrk c={CONNECTIONS} {arguments.seconds} s per run, Synapse {synapse.VERSION}; "
                  f"service + nginx on CPU {SERVICE_CPU}, load + Synapse + fake SFU on CPU {LOAD_CPU}", rows, failures)


if __name__ == "__main__":
    sys.exit(main())
