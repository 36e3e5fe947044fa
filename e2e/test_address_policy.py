"""The outbound address policy (contract §13.1): addresses in LIVEKIT_IP_RANGE_BLOCKLIST are never
connected to on a request's or a remote server's say, whatever name, delegation, redirect or base
URL leads there; servers listed by name in LIVEKIT_FULL_ACCESS_HOMESERVERS are exempt.

The harness allows loopback for every other test (service.LOOPBACK_ALLOWLIST); these tests run with
the default blocklist, allowing at most 127.0.0.1 where the fakes live, and put counting listeners
on 127.0.0.2, which stays blocked.
"""

import re
import socket
import threading
import time

import pytest

import expect
import matrix_client
import service as lkjwt
from fakes.federation import USERINFO_PATH, WELL_KNOWN_PATH
from fakes.homeserver import Reply, json_reply
from netns import NamespaceUnavailable
from test_discovery import World, expect_token

BLOCKED_LOG = "address is in LIVEKIT_IP_RANGE_BLOCKLIST"
CS_API_UNRESOLVABLE = "Unable to resolve client-server API"


class CountingListener:
    """A TCP listener that accepts, counts and drops every connection: the service must not make one."""

    def __init__(self, host: str):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self._socket.listen(64)
        self.host, self.port = self._socket.getsockname()
        self._lock = threading.Lock()
        self._connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def _accept(self):
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            with self._lock:
                self._connections += 1
            connection.close()

    def close(self):
        self._socket.shutdown(socket.SHUT_RDWR)
        self._socket.close()
        self._thread.join(5)


@pytest.fixture
def blocked_listener():
    listener = CountingListener("127.0.0.2")
    yield listener
    listener.close()


@pytest.fixture
def allowed_listener():
    listener = CountingListener("127.0.0.1")
    yield listener
    listener.close()


def blocked_records(service: lkjwt.Service, server_name: str) -> list[str]:
    return [line for line in service.process.stderr().splitlines()
            if BLOCKED_LOG in line and "level=warn" in line and f"MatrixServerName={server_name}" in line]


def token_request(server_name: str, access_token: str = "any-token") -> dict:
    return {
        "room_id": "!room:example.org", "slot_id": "m.call#ROOM",
        "openid_token": {"access_token": access_token, "matrix_server_name": server_name},
        "member": {"id": "member-1", "claimed_user_id": f"@u:{server_name}", "claimed_device_id": "DEVICE"},
    }


def test_default_policy_blocks_loopback_except_for_a_listed_server(start_stack, peers):
    """No allowlist at all: the listed homeserver (an IP literal on 127.0.0.1) is exempt and works;
    the unlisted one on the same address is never contacted."""
    service, frontend = start_stack(LIVEKIT_IP_RANGE_ALLOWLIST=None)
    alice = matrix_client.register(peers.full, "alice")
    assert frontend.post_json("/get_token", matrix_client.get_token_body(alice)).status == 200
    bob = matrix_client.register(peers.restricted, "bob")
    expect.matrix_error(frontend.post_json("/get_token", matrix_client.get_token_body(bob)), 401,
                        "M_UNAUTHORIZED", expect.UNAUTHORIZED)
    assert peers.restricted.tls_handshakes == 0
    assert peers.restricted.userinfo_requests == []
    [record, *_] = blocked_records(service, peers.restricted.server_name)
    assert "address=127.0.0.1" in record
    assert "access_token" not in record and bob.access_token not in service.process.stderr()
    [started] = [line for line in service.process.stderr().splitlines() if "msg=\"Starting service\"" in line]
    assert "IPRangeBlocklist=default" in started and "IPRangeAllowlist=none" in started


@pytest.mark.parametrize("host", [
    "127.0.0.2",
    "[::ffff:127.0.0.2]",  # IPv4-mapped IPv6: checked as its IPv4 address
    "2130706434",  # a "DNS name" that the resolver turns into 127.0.0.2
    "0x7f000002",
])
def test_userinfo_never_reaches_a_blocked_address(start_stack, blocked_listener, host):
    service, frontend = start_stack(LIVEKIT_IP_RANGE_ALLOWLIST="127.0.0.1")
    server_name = f"{host}:{blocked_listener.port}"
    expect.matrix_error(frontend.post_json("/get_token", token_request(server_name)), 401, "M_UNAUTHORIZED",
                        expect.UNAUTHORIZED)
    assert blocked_listener.connections == 0
    assert blocked_records(service, server_name), service.process.stderr()[-3000:]


def delegation_body(account: matrix_client.Account) -> dict:
    return matrix_client.get_token_body(account, delay_id="syd_policy", delay_timeout=1000)


@pytest.fixture
def delegating_stack(start_stack):
    """Every homeserver has full access (through `*`, which exempts nobody); only 127.0.0.1 is allowed."""
    return start_stack(LIVEKIT_FULL_ACCESS_HOMESERVERS="*", LIVEKIT_IP_RANGE_ALLOWLIST="127.0.0.1")


def redirect(location: str) -> Reply:
    return Reply(307, b"", headers=(("Location", location),))


def base_url_document(base_url: str) -> Reply:
    return json_reply(200, {"m.homeserver": {"base_url": base_url}})


@pytest.mark.parametrize("answer", [
    # A redirect to http is not followed, even to an allowed address.
    lambda allowed, blocked: redirect(f"http://127.0.0.1:{allowed.port}/.well-known/matrix/client"),
    # A redirect to https is followed, but not to a blocked address.
    lambda allowed, blocked: redirect(f"https://127.0.0.2:{blocked.port}/.well-known/matrix/client"),
    # A base URL with a query and fragment would turn the delayed-event path into another request.
    lambda allowed, blocked: base_url_document(f"http://127.0.0.1:{allowed.port}/x?signal=KILL#"),
    lambda allowed, blocked: base_url_document(f"http://user:pw@127.0.0.1:{allowed.port}"),
], ids=["redirect-to-http", "redirect-to-blocked-https", "base-url-with-query", "base-url-with-user-info"])
def test_client_well_known_cannot_lead_anywhere_else(delegating_stack, peers, allowed_listener, blocked_listener, answer,
                                                      request):
    service, frontend = delegating_stack
    peers.restricted.client_well_known = answer(allowed_listener, blocked_listener)
    account = matrix_client.register(peers.restricted, "carol")
    expect.matrix_error(frontend.post_json("/get_token", delegation_body(account)), 400, "M_BAD_JSON",
                        CS_API_UNRESOLVABLE)
    assert peers.restricted.client_well_known_requests == 1
    time.sleep(0.5)  # anything the service might still do in the background
    assert (allowed_listener.connections, blocked_listener.connections) == (0, 0)
    # The https redirect was followed as far as the connect-time check, and no further.
    assert bool(blocked_records(service, account.server_name)) == ("redirect-to-blocked-https" in request.node.name)


def test_delayed_events_never_reach_a_blocked_base_url(delegating_stack, peers, blocked_listener):
    """The base URL is acceptable in form, so the delegation is accepted; its restarts and the send
    after the delay timeout fail as transport errors without a connection."""
    service, frontend = delegating_stack
    peers.restricted.client_well_known = base_url_document(f"http://127.0.0.2:{blocked_listener.port}")
    account = matrix_client.register(peers.restricted, "dave")
    assert frontend.post_json("/get_token", delegation_body(account)).status == 200
    deadline = time.monotonic() + 15
    while not blocked_records(service, account.server_name) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert blocked_records(service, account.server_name), service.process.stderr()[-3000:]
    assert blocked_listener.connections == 0


def test_an_explicitly_listed_server_and_its_base_url_are_exempt(start_stack, peers, allowed_listener):
    """The listed homeserver's base URL may point anywhere, loopback included: the operator vouches for it.
    Its delayed events reach the base URL (the listener counts the connection)."""
    service, frontend = start_stack(LIVEKIT_IP_RANGE_ALLOWLIST=None)
    peers.full.client_well_known = base_url_document(f"http://127.0.0.1:{allowed_listener.port}")
    account = matrix_client.register(peers.full, "erin")
    assert frontend.post_json("/get_token", delegation_body(account)).status == 200
    deadline = time.monotonic() + 15
    while allowed_listener.connections == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert allowed_listener.connections > 0
    assert not blocked_records(service, account.server_name)


def test_start_up_reports_and_checks_both_lists(peers):
    env = peers.environment(LIVEKIT_IP_RANGE_BLOCKLIST="10.0.0.0/8 192.168.0.0/16", LIVEKIT_IP_RANGE_ALLOWLIST="10.1.0.0/16",
                            LIVEKIT_JWT_BIND="127.0.0.1:1")
    checked = lkjwt.check_config(env)
    assert checked.returncode == 0, checked.stderr
    assert "LIVEKIT_IP_RANGE_BLOCKLIST=10.0.0.0/8,192.168.0.0/16" in checked.stdout.splitlines()
    assert "LIVEKIT_IP_RANGE_ALLOWLIST=10.1.0.0/16" in checked.stdout.splitlines()
    for variable in ("LIVEKIT_IP_RANGE_BLOCKLIST", "LIVEKIT_IP_RANGE_ALLOWLIST"):
        failed = lkjwt.run_once(peers.environment(**{variable: "10.0.0.0/8, localhost"}))
        assert failed.returncode == 1
        assert failed.stderr.strip().splitlines()[-1] == \
            f'Invalid {variable} entry "localhost": expected an IP address or CIDR range'


def test_an_empty_blocklist_blocks_nothing_and_says_so(start_stack, peers, tmp_path):
    service, frontend = start_stack(LIVEKIT_IP_RANGE_BLOCKLIST="", LIVEKIT_IP_RANGE_ALLOWLIST=None)
    bob = matrix_client.register(peers.restricted, "bob")
    assert frontend.post_json("/get_token", matrix_client.get_token_body(bob)).status == 200
    log = service.process.stderr()
    assert re.search(r"level=warn msg=\"LIVEKIT_IP_RANGE_BLOCKLIST is empty", log)
    assert "IPRangeBlocklist=none" in log


# --- Real DNS: names, delegations and SRV targets that lead to blocked addresses -----------------

class PolicedWorld(World):
    """The discovery world of test_discovery.py plus a service with the default blocklist that
    allows only 127.0.0.12, where hs2.test's /.well-known/matrix/server lives."""

    def _start(self):
        super()._start()
        self.policed = self.start_service("policed", {"LIVEKIT_IP_RANGE_ALLOWLIST": "127.0.0.12"})


@pytest.fixture(scope="module")
def policed_world(tmp_path_factory):
    try:
        world = PolicedWorld(tmp_path_factory.mktemp("policed"), name="policy")
    except NamespaceUnavailable as reason:
        pytest.skip(f"network namespaces are not permitted here: {reason}")
    yield world
    world.stop()


@pytest.mark.parametrize("server_name, token, blocked_host, well_known_fetches, reason", [
    ("hs1.test", "token-1", ("127.0.0.11", 8448), 0, "its name resolves to a blocked address"),
    ("hs2.test", "token-2", ("127.0.0.22", 8448), 1, "its allowed well-known delegates to a blocked address"),
    ("hs4.test", "token-4", ("127.0.0.24", 8450), 0, "its SRV target is a blocked address"),
])
def test_names_delegations_and_srv_targets_cannot_reach_blocked_addresses(policed_world, server_name, token, blocked_host,
                                                                          well_known_fetches, reason):
    world = policed_world
    user_id = f"@u:{server_name}"
    # The same request succeeds through the service that allows loopback …
    expect_token(world.get_token(world.verified, server_name, token, user_id), user_id)
    served = len(world.host(*blocked_host).seen(USERINFO_PATH))
    fetched = len(world.host("127.0.0.12", 443).seen(WELL_KNOWN_PATH))
    # … and fails without a userinfo request through the one with the default policy, which still
    # fetched the well-known on the one allowed address.
    response = world.get_token(world.policed, server_name, token, user_id)
    assert response.status == 401, (reason, response.body)
    assert len(world.host(*blocked_host).seen(USERINFO_PATH)) == served, reason
    # (twice, in fact: after every target failed, resolution starts afresh once, §5.1 step 4)
    assert (len(world.host("127.0.0.12", 443).seen(WELL_KNOWN_PATH)) > fetched) == bool(well_known_fetches)
