"""Matrix server discovery against real DNS (contract §5.3, §5.4): a private network namespace with
dnsmasq serving A and SRV records for *.test names, nginx, the service and the fake homeservers all
inside it. The service's resolver and libcurl see only the namespace's DNS.
"""

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

import http_client
import service as lkjwt
from fakes.federation import USERINFO_PATH, WELL_KNOWN_PATH, FederationHost
from netns import Dnsmasq, NamespaceUnavailable, NetworkNamespace
from oracle import hashed_name, verified_claims
from processes import Process, accepts_connections, clean_environment, wait_until
from webservers import nginx_config

NGINX_PORT = 8080


@dataclass(frozen=True)
class Host:
    """A federation endpoint: which names resolve to it, where it listens, what it serves."""
    address: str
    port: int
    users: dict
    well_known: dict | None = None
    wrong_certificate: bool = False


# name → IPv4 address (A records)
ADDRESSES = {
    "hs1.test": "127.0.0.11",
    "hs2.test": "127.0.0.12", "matrix.hs2.test": "127.0.0.22",
    "hs3.test": "127.0.0.13", "matrix.hs3.test": "127.0.0.23",
    "hs4.test": "127.0.0.14", "fed.hs4.test": "127.0.0.24",
    "hs5.test": "127.0.0.15", "fed.hs5.test": "127.0.0.25",
    "hs6.test": "127.0.0.16",
    "hs7.test": "127.0.0.17", "dead.hs7.test": "127.0.0.27", "live.hs7.test": "127.0.0.37",
    "hs8.test": "127.0.0.18", "matrix.hs8.test": "127.0.0.38", "fed.hs8.test": "127.0.0.28",
}
SRV = [
    # name, target, port, priority, weight
    ("_matrix-fed._tcp.hs4.test", "fed.hs4.test", 8450, 0, 10),
    ("_matrix._tcp.hs5.test", "fed.hs5.test", 8451, 0, 10),
    ("_matrix-fed._tcp.hs7.test", "dead.hs7.test", 8452, 0, 10),
    ("_matrix-fed._tcp.hs7.test", "live.hs7.test", 8453, 10, 10),
    ("_matrix-fed._tcp.matrix.hs8.test", "fed.hs8.test", 8454, 0, 10),
]
HOSTS = [
    Host("127.0.0.11", 8448, {"token-1": "@u:hs1.test"}),
    Host("127.0.0.12", 443, {}, well_known={"m.server": "matrix.hs2.test"}),
    Host("127.0.0.22", 8448, {"token-2": "@u:hs2.test"}),
    Host("127.0.0.13", 443, {}, well_known={"m.server": "matrix.hs3.test:9448"}),
    Host("127.0.0.23", 9448, {"token-3": "@u:hs3.test"}),
    Host("127.0.0.24", 8450, {"token-4": "@u:hs4.test"}),
    Host("127.0.0.25", 8451, {"token-5": "@u:hs5.test"}),
    Host("127.0.0.16", 8448, {"token-6": "@u:hs6.test"}, wrong_certificate=True),
    Host("127.0.0.37", 8453, {"token-7": "@u:hs7.test"}),
    Host("127.0.0.18", 443, {}, well_known={"m.server": "matrix.hs8.test"}),
    Host("127.0.0.28", 8454, {"token-8": "@u:hs8.test"}),
]


def certificate(directory: Path, name: str, names: list[str]) -> tuple[str, str]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subject_alt_names = ",".join(f"IP:{host}" if host[0].isdigit() else f"DNS:{host}" for host in names)
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={name}",
         "-addext", f"subjectAltName={subject_alt_names}", "-addext", "basicConstraints=critical,CA:TRUE",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    return str(cert), str(key)


class World:
    """The namespace with its DNS, homeservers, service and nginx."""

    def __init__(self, directory: Path, name: str = "discovery"):
        self.directory = directory
        self.namespace = NetworkNamespace(f"lkjwt-{name}-{os.getpid()}")
        self.started = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self):
        records = ["local=/test/"] + [f"host-record={name},{address}" for name, address in ADDRESSES.items()]
        records += [f"srv-host={name},{target},{port},{priority},{weight}" for name, target, port, priority, weight in SRV]
        self.dns = Dnsmasq(self.namespace, self.directory, records)
        self.started.append(self.dns)
        self.good = certificate(self.directory, "discovery", [name for name in ADDRESSES if name != "hs6.test"])
        wrong = certificate(self.directory, "wrong", ["other.test"])
        self.hosts = {}
        for host in HOSTS:
            cert, key = wrong if host.wrong_certificate else self.good
            self.hosts[(host.address, host.port)] = self.namespace.call(
                lambda host=host, cert=cert, key=key: FederationHost(
                    (host.address, host.port), cert, key, well_known=host.well_known, users=host.users)).start()
        self.verified = self.start_service("verified", {})
        self.unverified = self.start_service(
            "unverified", {"LIVEKIT_INSECURE_SKIP_VERIFY_TLS": "YES_I_KNOW_WHAT_I_AM_DOING"})

    def start_service(self, name: str, overrides: dict) -> str:
        """The service under spawn-fcgi with its own nginx, both in the namespace; returns nginx's URL."""
        directory = self.directory / name
        directory.mkdir()
        # Every address here is loopback (127.0.0.x), which the default policy blocks; the harness
        # allowlist of service_environment lets discovery reach it (test_address_policy.py checks
        # the default policy in this world).
        env = lkjwt.service_environment(livekit_url="ws://127.0.0.1:7880", full_access="nobody.test",
                                        ca_file=Path(self.good[0]), **overrides)
        service = lkjwt.start_under_spawn_fcgi(env, directory, f"lkjwt-{name}", prefix=self.namespace.prefix())
        self.started.append(service)
        port = NGINX_PORT + len(self.started)
        (directory / "fastcgi_params").symlink_to("/etc/nginx/fastcgi_params")
        config = directory / "nginx.conf"
        config.write_text(nginx_config(directory, port, service.upstream, 1, True))
        nginx = Process(f"nginx-{name}", self.namespace.prefix() + ["nginx", "-p", str(directory), "-c", str(config),
                                                                   "-e", str(directory / "error.log")],
                        clean_environment(), directory)
        self.started.append(nginx)
        wait_until(lambda: self.namespace.call(lambda: accepts_connections(port)) or not nginx.running(),
                   f"nginx-{name} listening")
        nginx.require_running()
        return f"http://127.0.0.1:{port}"

    def get_token(self, base_url: str, server_name: str, token: str, user_id: str) -> http_client.Response:
        body = http_client.json_bytes({
            "room_id": "!room:example.org", "slot_id": "m.call#ROOM",
            "openid_token": {"access_token": token, "matrix_server_name": server_name},
            "member": {"id": "member-1", "claimed_user_id": user_id, "claimed_device_id": "DEVICE"},
        })
        return self.namespace.call(lambda: http_client.request(base_url, "POST", "/get_token", body))

    def host(self, address: str, port: int) -> FederationHost:
        return self.hosts[(address, port)]

    def stop(self):
        for process in reversed(self.started):
            process.stop()
        for host in getattr(self, "hosts", {}).values():
            host.stop()
        self.namespace.delete()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    try:
        world = World(tmp_path_factory.mktemp("discovery"))
    except NamespaceUnavailable as reason:
        pytest.skip(f"network namespaces are not permitted here, discovery tests with real DNS skipped: {reason}")
    yield world
    world.stop()


def expect_token(response: http_client.Response, user_id: str) -> None:
    assert response.status == 200, response.body
    claims = verified_claims(response.json()["jwt"], lkjwt.API_SECRET)
    assert claims["sub"] == hashed_name(user_id, "DEVICE", "member-1")


@pytest.mark.parametrize("server_name, token, host, expected_host_header, expected_sni", [
    # Bare name, no well-known, no SRV: port 8448 of the name itself.
    ("hs1.test", "token-1", ("127.0.0.11", 8448), "hs1.test", "hs1.test"),
    # Well-known delegation without port: the delegated name, its port 8448, its certificate.
    ("hs2.test", "token-2", ("127.0.0.22", 8448), "matrix.hs2.test", "matrix.hs2.test"),
    # Well-known delegation with port: Host carries the port.
    ("hs3.test", "token-3", ("127.0.0.23", 9448), "matrix.hs3.test:9448", "matrix.hs3.test"),
    # SRV _matrix-fed: connect to the target, but present the server name.
    ("hs4.test", "token-4", ("127.0.0.24", 8450), "hs4.test", "hs4.test"),
    # The deprecated _matrix SRV name still counts.
    ("hs5.test", "token-5", ("127.0.0.25", 8451), "hs5.test", "hs5.test"),
    # First SRV target unreachable: the next one is tried.
    ("hs7.test", "token-7", ("127.0.0.37", 8453), "hs7.test", "hs7.test"),
])
def test_discovery_reaches_the_right_server_with_the_right_names(world, server_name, token, host,
                                                                  expected_host_header, expected_sni):
    user_id = f"@u:{server_name}"
    response = world.get_token(world.verified, server_name, token, user_id)
    expect_token(response, user_id)
    seen = world.host(*host).seen(USERINFO_PATH)
    assert seen, f"no userinfo request reached {host}"
    assert (seen[-1].host, seen[-1].sni) == (expected_host_header, expected_sni)


def test_well_known_is_fetched_from_the_server_name(world):
    world.get_token(world.verified, "hs2.test", "token-2", "@u:hs2.test")
    fetches = world.host("127.0.0.12", 443).seen(WELL_KNOWN_PATH)
    assert fetches and (fetches[0].host, fetches[0].sni) == ("hs2.test", "hs2.test")


def test_wrong_certificate_name_is_rejected_unless_verification_is_off(world):
    rejected = world.get_token(world.verified, "hs6.test", "token-6", "@u:hs6.test")
    assert rejected.status == 401, rejected.body
    assert not world.host("127.0.0.16", 8448).seen(USERINFO_PATH), "the request got past a wrong certificate"
    accepted = world.get_token(world.unverified, "hs6.test", "token-6", "@u:hs6.test")
    expect_token(accepted, "@u:hs6.test")


def test_one_well_known_fetch_and_one_srv_lookup_for_a_hundred_requests(world):
    responses = []
    lock = threading.Lock()

    def burst():
        def client():
            for _ in range(10):
                response = http_client.request(world.verified, "POST", "/get_token", http_client.json_bytes({
                    "room_id": "!room:example.org", "slot_id": "m.call#ROOM",
                    "openid_token": {"access_token": "token-8", "matrix_server_name": "hs8.test"},
                    "member": {"id": "member-1", "claimed_user_id": "@u:hs8.test", "claimed_device_id": "DEVICE"},
                }))
                with lock:
                    responses.append(response.status)
        # Ten concurrent clients: concurrent lookups of one name must collapse into one.
        clients = [threading.Thread(target=client) for _ in range(10)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()

    world.namespace.call(burst)
    assert responses == [200] * 100
    assert len(world.host("127.0.0.18", 443).seen(WELL_KNOWN_PATH)) == 1
    assert world.dns.queries("_matrix-fed._tcp.matrix.hs8.test", "SRV") == 1
    assert len(world.host("127.0.0.28", 8454).seen(USERINFO_PATH)) == 100
