"""CPU per token of two lkjwt-fcgi binaries under the same load at the same time (not a test).

For judging a change to the cost of a request on a shared machine: figures of one binary taken a
minute apart move by up to 1.5x there (bench/bench.py alternates rounds, but each run still meets
its own moment), while two services loaded simultaneously meet the same moment. Both services, each
behind its own nginx (one worker), share CPU 0; two wrk (c=16 each, `POST /get_token` of a restricted
user) and the fakes run on CPU 1. Each round prints both services' CPU per token and B/A. A run of
one binary against itself (`side_by_side.py X X`) gives the noise of the method: on the project's
machine B/A 0.97–1.06 per round, median 1.00, while the figures themselves moved from 176 to 239 µs.

Usage: python3 bench/side_by_side.py BINARY_A BINARY_B [--rounds N] [--seconds S]
"""

import argparse
import statistics
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import matrix_client  # noqa: E402
import service as lkjwt  # noqa: E402
from bench import measured, post_script, started_fakes, wrk  # noqa: E402
from pinning import LOAD_CPU, SERVICE_CPU, on_cpu, pin, pin_this_process, require_two_cpus  # noqa: E402
from webservers import Nginx  # noqa: E402

CONNECTIONS_EACH = 16


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", type=Path, nargs=2, help="the two lkjwt-fcgi binaries, A and B")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=int, default=5, help="duration of each round's simultaneous runs")
    arguments = parser.parse_args()
    require_two_cpus()
    pin_this_process(LOAD_CPU)

    with started_fakes("lkjwt-side-by-side-") as peers:
        directory, cert, homeserver, sfu = peers.directory, peers.cert, peers.homeserver, peers.sfu
        running = []
        try:
            env = lkjwt.service_environment(livekit_url=sfu.url, full_access="full-access.example.org", ca_file=cert,
                                            LIVEKIT_LOG_LEVEL="info")
            services = []
            for name, binary in zip("AB", arguments.binaries):
                own = directory / name
                own.mkdir()
                lkjwt.BINARY = binary.resolve()
                service = lkjwt.start_under_spawn_fcgi(env, own, name=f"lkjwt-{name}")
                running.append(service)
                nginx = Nginx(own, service.upstream, name=f"nginx-{name}", worker_processes=1, access_log=False)
                running.append(nginx)
                services.append((service, f"{nginx.base_url}/get_token"))
            for process in running:
                pin(process.process.pid, SERVICE_CPU)
            script = post_script(directory, matrix_client.get_token_body(matrix_client.register(homeserver, "bench")))

            def load(service, url, results, index):
                results[index] = measured(service.process.pid, lambda: wrk(
                    url, arguments.seconds, CONNECTIONS_EACH, script, prefix=on_cpu(LOAD_CPU)))

            ratios = []
            for number in range(arguments.rounds + 1):
                results = [None, None]
                threads = [threading.Thread(target=load, args=(service, url, results, index))
                           for index, (service, url) in enumerate(services)]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                (run_a, cpu_a), (run_b, cpu_b) = results
                if run_a.failures or run_b.failures:
                    print(f"{run_a.failures + run_b.failures} requests failed: the figures are not valid")
                    return 1
                if number == 0:
                    continue  # warm-up: connections to the homeserver, caches
                ratios.append(cpu_b / cpu_a)
                print(f"round {number}: A {cpu_a:.1f} µs per token ({run_a.requests_per_second:,.0f} req/s), "
                      f"B {cpu_b:.1f} µs ({run_b.requests_per_second:,.0f} req/s), B/A {ratios[-1]:.3f}", flush=True)
            print(f"median B/A {statistics.median(ratios):.3f}")
        finally:
            for process in reversed(running):
                process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
