"""Fixtures: the fake peers, the service under spawn-fcgi, and the web servers in front of it.

Everything long-lived is started once per session; tests that need a differently configured
service start their own (see `start_stack`).
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

import http_client
import matrix_client
import service as lkjwt
from fakes.homeserver import FakeHomeserver
from fakes.sfu import FakeSFU
from tls import self_signed_certificate
from webservers import Caddy, LighttpdCGI, Nginx

# Every way a client reaches the service: web server × mount point.
FRONTENDS = ["nginx-root", "nginx-prefix", "caddy-root", "caddy-prefix", "cgi"]
# Those that forward arbitrary paths to the service (the root mounts pass only its endpoints).
PREFIX_FRONTENDS = ["nginx-prefix", "caddy-prefix", "cgi"]
PREFIX = "/livekit/jwt"


@dataclass
class Peers:
    full: FakeHomeserver  # listed in LIVEKIT_FULL_ACCESS_HOMESERVERS
    restricted: FakeHomeserver  # not listed
    sfu: FakeSFU
    ca_file: Path  # the homeservers' self-signed certificate, trusted through SSL_CERT_FILE

    def environment(self, **overrides) -> dict:
        """The service configuration for these peers."""
        return lkjwt.service_environment(livekit_url=self.sfu.url, full_access=self.full.server_name,
                                         ca_file=self.ca_file, **overrides)


@dataclass
class Frontend:
    name: str
    base_url: str
    prefix: str  # the service's mount point

    def request(self, method: str, endpoint: str, body: bytes | None = None, **options) -> http_client.Response:
        return http_client.request(self.base_url, method, self.prefix + endpoint, body, **options)

    def post_json(self, endpoint: str, document, **options) -> http_client.Response:
        return self.request("POST", endpoint, http_client.json_bytes(document), **options)


def pytest_sessionstart(session):
    if not lkjwt.BINARY.exists():
        pytest.exit(f"{lkjwt.BINARY} does not exist: run `swift build -c release` first", returncode=2)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def peers(workdir):
    cert, key = self_signed_certificate(workdir)
    full = FakeHomeserver(str(cert), str(key)).start()
    restricted = FakeHomeserver(str(cert), str(key)).start()
    sfu = FakeSFU(lkjwt.API_KEY, lkjwt.API_SECRET).start()
    yield Peers(full, restricted, sfu, cert)
    for fake in (sfu, restricted, full):
        fake.stop()


@pytest.fixture(autouse=True)
def fresh_peers(request):
    """Counters and failure switches start from zero in every test (if the test uses the peers)."""
    if "peers" in request.fixturenames:
        peers = request.getfixturevalue("peers")
        peers.full.reset_counters()
        peers.restricted.reset_counters()
        peers.sfu.reset()


@pytest.fixture(scope="session")
def service(peers, workdir):
    """The shared service: spawn-fcgi, unix socket, full access for `peers.full` only."""
    started = lkjwt.start_under_spawn_fcgi(peers.environment(), workdir)
    yield started
    # Whatever the tests threw at it, it must still be up, and leave cleanly on SIGTERM.
    still_running = started.process.running()
    status = started.stop()
    assert still_running, f"the service died during the session:\n{started.process.stderr()[-4000:]}"
    assert status == 0, f"exit status {status} after SIGTERM"


@pytest.fixture(scope="session")
def nginx(service, workdir):
    server = Nginx(workdir, service.upstream)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def caddy(service, workdir):
    server = Caddy(workdir, service.upstream.removeprefix("unix:"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cgi(peers, workdir):
    script = lkjwt.cgi_wrapper_script(peers.environment(), workdir / "cgi.stderr")
    server = LighttpdCGI(workdir, script)
    yield server
    server.stop()


# Frontend name → (web server fixture, mount point). "nginx-unbuffered" is a test-only location of
# nginx that streams request bodies (fastcgi_request_buffering off).
MOUNTS = {
    "nginx-root": ("nginx", ""),
    "nginx-prefix": ("nginx", PREFIX),
    "nginx-unbuffered": ("nginx", "/unbuffered"),
    "caddy-root": ("caddy", ""),
    "caddy-prefix": ("caddy", PREFIX),
    "cgi": ("cgi", LighttpdCGI.script_name),
}


@pytest.fixture(params=FRONTENDS)
def frontend(request) -> Frontend:
    """The service as reached through one web server and mount point (started on first use)."""
    server_fixture, prefix = MOUNTS[request.param]
    return Frontend(request.param, request.getfixturevalue(server_fixture).base_url, prefix)


@pytest.fixture
def alice(peers) -> matrix_client.Account:
    """A user of the full-access homeserver."""
    return matrix_client.register(peers.full, "alice")


@pytest.fixture
def bob(peers) -> matrix_client.Account:
    """A user of the restricted homeserver."""
    return matrix_client.register(peers.restricted, "bob")


@pytest.fixture
def start_stack(peers, tmp_path):
    """Start a dedicated service with configuration overrides behind its own nginx; returns the
    service and the nginx root-mount frontend. `launch(env, directory, name)` starts the service
    (default: the shipped spawn-fcgi script). Everything is stopped after the test unless the test
    stopped it itself."""
    started = []

    def start(name: str = "lkjwt-fcgi", launch=lkjwt.start_under_spawn_fcgi, **overrides):
        service = launch(peers.environment(**overrides), tmp_path, name=name)
        started.append(service)
        nginx = Nginx(tmp_path, service.upstream, name=f"nginx-{name}")
        started.append(nginx)
        return service, Frontend(f"nginx-{name}", nginx.base_url, "")

    yield start
    for process in reversed(started):
        process.stop()
