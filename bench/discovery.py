"""Cost of Matrix server discovery per token request, with real DNS (see bench/run).

Token requests for a user whose server name needs the full discovery (well-known delegation, then a
DNS SRV lookup) against the same requests for a server given as an IP literal with port (no
discovery at all), both restricted users, through nginx. Everything runs in a private network
namespace with dnsmasq, as in e2e/test_discovery.py. With discovery cached per process, both must
reach the same rate, and the run must cause one well-known fetch and one SRV lookup in all.
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

import service as lkjwt  # noqa: E402
from bench import CONCURRENCY, post_script, report, wrk  # noqa: E402
from fakes.federation import USERINFO_PATH, WELL_KNOWN_PATH, FederationHost  # noqa: E402
from netns import Dnsmasq, NetworkNamespace  # noqa: E402
from processes import Process, accepts_connections, clean_environment, wait_until  # noqa: E402
from test_discovery import certificate  # noqa: E402
from webservers import nginx_config  # noqa: E402

NAMES = {"hs.test": "127.0.0.2", "matrix.hs.test": "127.0.0.3", "fed.hs.test": "127.0.0.4"}
NGINX_PORT = 8080


def token_body(server_name: str, token: str) -> dict:
    return {
        "room_id": "!bench:example.org", "slot_id": "m.call#ROOM",
        "openid_token": {"access_token": token, "matrix_server_name": server_name},
        "member": {"id": "member-1", "claimed_user_id": f"@bench:{server_name}", "claimed_device_id": "DEVICE"},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="duration of each wrk run")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lkjwt-bench-discovery-") as temporary:
        directory = Path(temporary)
        namespace = NetworkNamespace(f"lkjwt-bench-{os.getpid()}")
        running, hosts = [], []
        try:
            dns = Dnsmasq(namespace, directory, ["local=/test/"]
                          + [f"host-record={name},{address}" for name, address in NAMES.items()]
                          + ["srv-host=_matrix-fed._tcp.matrix.hs.test,fed.hs.test,8449,0,10"])
            running.append(dns)
            cert, key = certificate(directory, "bench", list(NAMES) + ["127.0.0.1"])
            literal = namespace.call(lambda: FederationHost(("127.0.0.1", 8448), cert, key,
                                                            users={"literal": "@bench:127.0.0.1:8448"})).start()
            delegating = namespace.call(lambda: FederationHost(("127.0.0.2", 443), cert, key,
                                                               well_known={"m.server": "matrix.hs.test"})).start()
            federation = namespace.call(lambda: FederationHost(("127.0.0.4", 8449), cert, key,
                                                               users={"delegated": "@bench:hs.test"})).start()
            hosts += [literal, delegating, federation]

            env = lkjwt.service_environment(livekit_url="ws://127.0.0.1:7880", full_access="nobody.test",
                                            ca_file=Path(cert), LIVEKIT_LOG_LEVEL="info")
            service = lkjwt.start_under_spawn_fcgi(env, directory, prefix=namespace.prefix())
            running.append(service)
            nginx_directory = directory / "nginx"
            nginx_directory.mkdir()
            (nginx_directory / "fastcgi_params").symlink_to("/etc/nginx/fastcgi_params")
            config = nginx_directory / "nginx.conf"
            config.write_text(nginx_config(nginx_directory, NGINX_PORT, service.upstream, "auto", False))
            nginx = Process("nginx", namespace.prefix() + ["nginx", "-p", str(nginx_directory), "-c", str(config)],
                            clean_environment(), directory)
            running.append(nginx)
            wait_until(lambda: namespace.call(lambda: accepts_connections(NGINX_PORT)), "nginx listening")
            url = f"http://127.0.0.1:{NGINX_PORT}/get_token"

            results = {}
            for label, server_name, token in [("IP literal, no discovery", "127.0.0.1:8448", "literal"),
                                              ("hs.test: well-known + SRV, cached", "hs.test", "delegated")]:
                script = post_script(directory, token_body(server_name, token))
                # A short warm-up fills the caches and the connection pool; the measured run follows.
                wrk(url, 1, CONCURRENCY, script, prefix=namespace.prefix())
                results[label] = wrk(url, arguments.seconds, CONCURRENCY, script, prefix=namespace.prefix())
            well_known_fetches = len(delegating.seen(WELL_KNOWN_PATH))
            srv_lookups = dns.queries("_matrix-fed._tcp.matrix.hs.test", "SRV")
            delegated_requests = len(federation.seen(USERINFO_PATH))
        finally:
            for process in reversed(running):
                process.stop()
            for host in hosts:
                host.stop()
            namespace.delete()

    literal_rate = results["IP literal, no discovery"].requests_per_second
    delegated_rate = results["hs.test: well-known + SRV, cached"].requests_per_second
    ratio = delegated_rate / literal_rate
    rows = [(f"POST /get_token, {label}, c={CONCURRENCY}", f"{result.requests_per_second:,.0f} req/s", "", None)
            for label, result in results.items()]
    rows += [
        ("  delegated / literal", f"{ratio:.2f}", ">= 0.90", ratio >= 0.90),
        ("well-known fetches for hs.test", f"{well_known_fetches} for {delegated_requests:,} requests", "1",
         well_known_fetches == 1),
        ("SRV lookups for matrix.hs.test", f"{srv_lookups}", "1", srv_lookups == 1),
    ]
    return report(f"\nDiscovery cost: nginx → lkjwt-fcgi → fake homeservers, dnsmasq, one network namespace, "
                  f"wrk {arguments.seconds} s per run", rows, sum(result.failures for result in results.values()))


if __name__ == "__main__":
    sys.exit(main())
