"""Bounded time and isolation from slow or hostile servers (contract §13.2, §13.3), through nginx:
64 homeservers that accept TCP and never answer beside a homeserver that does, a name whose
nameserver never answers, and a request body that never completes.

Every service here allows loopback (`LIVEKIT_IP_RANGE_ALLOWLIST`): the fakes live there, and the
default outbound address policy blocks it.
"""

import json
import os
import secrets
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

import fastcgi
import http_client
import matrix_client
import service as lkjwt
from fakes.silent import SRV, SilentNameserver, SilentTCPServers
from netns import NamespaceUnavailable, NetworkNamespace
from webservers import Nginx

ALLOW_LOOPBACK = {"LIVEKIT_IP_RANGE_ALLOWLIST": "127.0.0.0/8"}
SILENT_ADDRESSES = [f"127.0.0.{last}" for last in range(2, 66)]
# The verification budget (§5.1), plus what nginx and Python add to an answer.
BUDGET = 10.0
SLACK = 0.5


def token_body_for(server_name: str) -> dict:
    """A token request naming `server_name`: whoever runs that server may send it."""
    return {
        "room_id": "!room:example.org", "slot_id": "m.call#ROOM",
        "openid_token": {"access_token": "a" + secrets.token_hex(8), "token_type": "Bearer",
                         "matrix_server_name": server_name, "expires_in": 3600},
        "member": {"id": "member-1", "claimed_user_id": f"@mallory:{server_name}", "claimed_device_id": "DEVICE"},
    }


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def is_matrix_error(response: http_client.Response) -> bool:
    try:
        document = response.json()
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(document.get("errcode"), str) and isinstance(document.get("error"), str)


@contextmanager
def flood(ask, targets):
    """One thread per target asking `ask(target)` again and again until the block ends (then they are
    joined); yields the list of answers, (target, response, seconds), to read after the block. A
    request not answered with the 401 of a verification that ran its course was refused at once: it
    asks again after 0.2 s, so that one stays in flight per target without making this Python
    process the bottleneck the measured requests wait for."""
    stop = threading.Event()
    answers = []
    lock = threading.Lock()

    def keep_asking(target):
        while not stop.is_set():
            response, seconds = timed(lambda: ask(target))
            with lock:
                answers.append((target, response, seconds))
            if response.status != 401:
                stop.wait(0.2)

    threads = [threading.Thread(target=keep_asking, args=(target,), daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        yield answers
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=2 * BUDGET)


def test_64_silent_servers_leave_a_known_homeserver_its_threads(start_stack, peers):
    """§13.3: one worker process on default settings (16 threads); 64 requests always in flight,
    each naming its own server that accepts TCP and never answers. A homeserver that answered
    recently keeps getting tokens with at most 1 s added latency; each of the 64 is answered (401,
    or 503 with a Matrix error) within the 10 s budget; /healthz stays up."""
    silent = SilentTCPServers([(address, 8448) for address in SILENT_ADDRESSES])
    try:
        _, frontend = start_stack(**ALLOW_LOOPBACK)
        alice = matrix_client.register(peers.full, "alice-" + secrets.token_hex(4))

        def token():
            return frontend.post_json("/get_token", matrix_client.get_token_body(alice))

        baseline = [timed(token) for _ in range(30)]
        assert all(response.status == 200 for response, _ in baseline), baseline[0][0].body

        healthy, health_checks = [], []
        with flood(lambda address: frontend.post_json("/get_token", token_body_for(address), timeout=60),
                   SILENT_ADDRESSES) as attacks:
            until = time.monotonic() + 2 * BUDGET
            while time.monotonic() < until:
                healthy.append(timed(token))
                health_checks.append(timed(lambda: frontend.request("GET", "/healthz")))
                time.sleep(0.05)
    finally:
        silent.stop()
    # (address, status, is a Matrix error, seconds)
    answers = [(address, response.status, is_matrix_error(response), seconds) for address, response, seconds in attacks]

    slowest_baseline = max(seconds for _, seconds in baseline)
    assert [response.status for response, _ in healthy] == [200] * len(healthy), [r.body for r, _ in healthy if r.status != 200][:3]
    slowest = max(seconds for _, seconds in healthy)
    assert slowest <= slowest_baseline + 1.0, (slowest, slowest_baseline)
    assert all(response.status == 200 for response, _ in health_checks)
    assert max(seconds for _, seconds in health_checks) <= 1.0

    assert answers, "no attacking request was answered"
    wrong = [answer for answer in answers if answer[1] not in (401, 429, 503) or not answer[2]]
    assert not wrong, wrong[:5]
    late = [answer for answer in answers if answer[3] > BUDGET + SLACK]
    assert not late, late[:5]
    # The silent servers were really asked, until their budget ran out.
    assert silent.total() >= 8
    assert any(status == 401 and seconds >= BUDGET - 1 for _, status, _, seconds in answers)


def test_a_known_homeserver_that_stalls_takes_only_its_share(start_stack, peers):
    """§13.3: a homeserver that answered (so is known) and then stalls 64 requests (its answers come
    after the 10 s budget) holds at most half the threads; users of another homeserver keep getting
    tokens with at most 1 s added latency, and each stalled request is answered within the budget."""
    _, frontend = start_stack(**ALLOW_LOOPBACK)
    bob = matrix_client.register(peers.restricted, "bob-" + secrets.token_hex(4))
    # Both homeservers answer once, so both are known.
    assert frontend.post_json("/get_token", matrix_client.get_token_body(
        matrix_client.register(peers.full, "honest-" + secrets.token_hex(4)))).status == 200

    def token():
        return frontend.post_json("/get_token", matrix_client.get_token_body(bob))

    baseline = [timed(token) for _ in range(30)]
    assert all(response.status == 200 for response, _ in baseline)
    stalled = [matrix_client.register(peers.full, f"stall{index}x{secrets.token_hex(3)}", delay=2 * BUDGET)
               for index in range(64)]
    healthy = []
    with flood(lambda account: frontend.post_json("/get_token", matrix_client.get_token_body(account), timeout=60),
               stalled) as stalls:
        until = time.monotonic() + 1.5 * BUDGET
        while time.monotonic() < until:
            healthy.append(timed(token))
            time.sleep(0.05)
    answers = [(response.status, is_matrix_error(response), seconds) for _, response, seconds in stalls]

    assert [response.status for response, _ in healthy] == [200] * len(healthy)
    assert max(seconds for _, seconds in healthy) <= max(seconds for _, seconds in baseline) + 1.0
    wrong = [answer for answer in answers if answer[0] not in (401, 429, 503) or not answer[1]]
    assert not wrong, wrong[:5]
    assert max(seconds for _, _, seconds in answers) <= BUDGET + SLACK
    # Some stalled requests got their thread (and their 401 at the budget), the others were refused.
    statuses = {status for status, _, _ in answers}
    assert {401, 503} <= statuses, statuses


def fastcgi_post_that_stalls(upstream: str, path: str, declared: int, sent: bytes):
    """A direct FastCGI request whose body stops after `sent` (of `declared` bytes); returns the
    connection, to read the answer from."""
    connection = fastcgi._connect(upstream, 30.0)
    params = {"REQUEST_METHOD": "POST", "SCRIPT_NAME": path, "REQUEST_URI": path, "GATEWAY_INTERFACE": "CGI/1.1",
              "REMOTE_ADDR": "127.0.0.1", "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(declared)}
    connection.sendall(
        fastcgi._record(fastcgi.BEGIN_REQUEST, struct.pack(">HB5x", fastcgi.RESPONDER, 0))
        + fastcgi._record(fastcgi.PARAMS, fastcgi._params(params)) + fastcgi._record(fastcgi.PARAMS)
        + fastcgi._record(fastcgi.STDIN, sent))
    return connection


def read_fastcgi_answer(connection) -> tuple[int, bytes]:
    stream, output = connection.makefile("rb"), b""
    while True:
        header = stream.read(8)
        assert len(header) == 8, "connection closed before FCGI_END_REQUEST"
        _, record_type, _, length, padding = struct.unpack(">BBHHBx", header)
        content = stream.read(length + padding)[:length]
        if record_type == fastcgi.STDOUT:
            output += content
        elif record_type == fastcgi.END_REQUEST:
            break
    head, _, body = output.partition(b"\r\n\r\n")
    status = 200
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
    return status, body


def test_a_body_that_never_completes_is_answered_408_and_frees_its_thread(start_stack):
    """§13.2: a streamed body (here a direct FastCGI connection) that stops arriving is answered
    408 with a Matrix error 10 s after the request began; meanwhile and afterwards the service serves."""
    service, frontend = start_stack(**ALLOW_LOOPBACK)
    started = time.monotonic()
    stalled = [fastcgi_post_that_stalls(service.upstream, "/get_token", 400, b'{"room_id":"!r:example.org",')
               for _ in range(3)]
    try:
        for _ in range(10):
            response, seconds = timed(lambda: frontend.request("GET", "/healthz"))
            assert (response.status, seconds < 1.0) == (200, True)
            time.sleep(0.2)
        answers = [read_fastcgi_answer(connection) for connection in stalled]
        elapsed = time.monotonic() - started
    finally:
        for connection in stalled:
            connection.close()
    for status, body in answers:
        assert status == 408
        assert json.loads(body) == {"errcode": "M_UNKNOWN", "error": "Request body timed out"}
    assert 10.0 - 0.1 <= elapsed <= 10.0 + 1.0, elapsed
    assert frontend.request("GET", "/healthz").status == 200


def test_a_body_that_arrives_in_time_is_read_whole(start_stack):
    """The read deadline cuts nothing that arrives: a body sent in pieces over 2 s is read whole."""
    service, _ = start_stack(**ALLOW_LOOPBACK)
    body = json.dumps(token_body_for("127.0.0.1:1")).encode()
    connection = fastcgi_post_that_stalls(service.upstream, "/get_token", len(body), body[:10])
    try:
        for start in range(10, len(body), 40):
            time.sleep(0.05)
            connection.sendall(fastcgi._record(fastcgi.STDIN, body[start:start + 40]))
        connection.sendall(fastcgi._record(fastcgi.STDIN))
        status, answer = read_fastcgi_answer(connection)
    finally:
        connection.close()
    # Parsed and verified (nothing listens on port 1): the whole body arrived.
    assert (status, json.loads(answer)["errcode"]) == (401, "M_UNAUTHORIZED")


@pytest.fixture
def dead_dns(tmp_path):
    """A private network namespace whose only nameserver reads queries and never answers, with the
    resolver's default timeouts (5 s, 2 attempts), a service in it and nginx in front."""
    try:
        namespace = NetworkNamespace(f"lkjwt-deaddns-{os.getpid()}")
    except NamespaceUnavailable as reason:
        pytest.skip(f"network namespaces are not permitted here: {reason}")
    started = []
    try:
        (namespace.etc / "resolv.conf").write_text("nameserver 127.0.0.1\n")
        nameserver = namespace.call(SilentNameserver)
        started.append(nameserver)
        env = lkjwt.service_environment(livekit_url="ws://127.0.0.1:7880", full_access="nobody.test", ca_file=None,
                                        **ALLOW_LOOPBACK)
        service = lkjwt.start_under_spawn_fcgi(env, tmp_path, "lkjwt-deaddns", prefix=namespace.prefix())
        started.append(service)
        # nginx outside the namespace: the unix socket is a file, reachable from any namespace.
        nginx = Nginx(tmp_path, service.upstream)
        started.append(nginx)
        yield nginx.base_url, nameserver
    finally:
        for item in reversed(started):
            item.stop()
        namespace.delete()


def test_a_name_whose_nameserver_never_answers_is_answered_within_the_budget(dead_dns):
    """§13.2, §5.1: well-known, SRV and address lookups of a name whose nameserver never answers
    end with the 10 s budget (the resolver's own 5 s × 2 would take 20 s), concurrent requests
    for the name wait for one lookup no longer than their own deadline, and the failed SRV lookup
    is remembered, so later requests do not ask again."""
    base_url, nameserver = dead_dns

    def ask():
        return timed(lambda: http_client.request(base_url, "POST", "/get_token",
                                                 http_client.json_bytes(token_body_for("dead.test")), timeout=60))

    with ThreadPoolExecutor(3) as pool:
        concurrent = list(pool.map(lambda _: ask(), range(3)))
    later = [ask() for _ in range(2)]
    for response, seconds in concurrent + later:
        assert response.status == 401, response.body
        assert seconds <= BUDGET + SLACK, seconds
    assert nameserver.queries("_matrix-fed._tcp.dead.test", SRV) == 1
