"""The process around the logic: start-up modes (contract §1.3), configuration errors (§2.3),
shutdown, and what the log must never contain (§10)."""

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import matrix_client
import service as lkjwt
from processes import free_port, wait_until


def test_sigterm_lets_the_request_in_flight_finish(start_stack, peers):
    service, frontend = start_stack()
    # The homeserver takes 2 s to answer: long enough to signal the service in the middle.
    slow = matrix_client.register(peers.full, "slow", delay=2)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(frontend.post_json, "/get_token", matrix_client.get_token_body(slow))
        wait_until(lambda: peers.full.userinfo_requests, "the token request reaching the homeserver")
        service.process.send_signal(signal.SIGTERM)
        response = pending.result(timeout=30)
    assert response.status == 200, response.body
    assert len(peers.sfu.calls) == 1
    assert service.process.wait(timeout=10) == 0


def test_sigterm_when_idle_exits_0_promptly(start_stack):
    service, _ = start_stack()
    started = time.monotonic()
    assert service.stop() == 0
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("kind", ["unix", "tcp"])
def test_own_socket_from_livekit_jwt_bind(start_stack, peers, tmp_path, bob, kind):
    """Neither an inherited socket nor CGI: the service listens on LIVEKIT_JWT_BIND itself."""
    if kind == "unix":
        bind = str(tmp_path / "own.sock")
        upstream = f"unix:{bind}"
    else:
        bind = upstream = f"127.0.0.1:{free_port()}"

    def launch(env, directory, name):
        return lkjwt.start_with_own_socket(env, directory, bind, upstream, name)

    service, frontend = start_stack(launch=launch)
    assert frontend.request("GET", "/healthz").status == 200
    assert frontend.post_json("/get_token", matrix_client.get_token_body(bob)).status == 200
    assert service.stop() == 0


def test_systemd_socket_activation(start_stack, alice):
    """What lkjwt-fcgi.socket does: the listening socket arrives as fd 3 with LISTEN_FDS/LISTEN_PID."""
    service, frontend = start_stack(launch=lkjwt.start_socket_activated)
    assert frontend.post_json("/get_token", matrix_client.get_token_body(alice)).status == 200
    assert service.stop() == 0


def test_unusable_listen_address_fails_start_up(peers, tmp_path):
    bind = str(tmp_path / "missing-directory" / "fcgi.sock")
    started = lkjwt.run_once(peers.environment(LIVEKIT_JWT_BIND=bind))
    assert started.returncode == 1
    # §2.3 leaves open whether <address> is the value as configured or in its explicit unix: form.
    prefixes = (f'Could not listen on "{bind}": ', f'Could not listen on "unix:{bind}": ')
    assert any(line.startswith(prefixes) for line in started.stderr.splitlines()), started.stderr


def test_check_config_prints_the_configuration_with_the_secret_masked(peers):
    checked = lkjwt.check_config(peers.environment())
    assert checked.returncode == 0, checked.stderr
    assert f"LIVEKIT_URL={peers.sfu.url}" in checked.stdout.splitlines()
    [secret_line] = [line for line in checked.stdout.splitlines() if line.startswith("LIVEKIT_SECRET=")]
    assert secret_line != "LIVEKIT_SECRET="
    assert lkjwt.API_SECRET not in checked.stdout + checked.stderr


KEY_FILE_CONTENT = "first: line\nsecond: line\n"  # two colons: not "key: secret"

BAD_CONFIGURATIONS = [
    pytest.param({"LIVEKIT_URL": None}, "LIVEKIT_KEY* / LIVEKIT_SECRET* and LIVEKIT_URL must be set", id="no-url"),
    pytest.param({"LIVEKIT_SECRET": " \r\n"}, "LIVEKIT_KEY* / LIVEKIT_SECRET* and LIVEKIT_URL must be set",
                 id="blank-secret"),
    pytest.param({"LIVEKIT_JWT_BIND": "127.0.0.1:9", "LIVEKIT_JWT_PORT": "9"},
                 "LIVEKIT_JWT_BIND and LIVEKIT_JWT_PORT must not be set together", id="bind-and-port"),
    pytest.param({"LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS": "-1"},
                 'LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "-1"',
                 id="negative-interval"),
    pytest.param({"LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS": "-5"},
                 'LIVEKIT_MEMBERSHIP_CHECK_INTERVAL_SECONDS must be a non-negative integer, got "-5"',
                 id="negative-membership-interval"),
    pytest.param({"LIVEKIT_CS_API_URL_OVERRIDES": "example.com"},
                 'failed parsing LIVEKIT_CS_API_URL_OVERRIDES: invalid entry "example.com", expected server_name=url',
                 id="override-without-url"),
    pytest.param({"LIVEKIT_KEY_FILE": KEY_FILE_CONTENT}, "invalid key secret file format!", id="key-file-format"),
]


@pytest.mark.parametrize("overrides, message", BAD_CONFIGURATIONS)
def test_bad_configuration_exits_1_with_the_contract_text(peers, tmp_path, overrides, message):
    if "LIVEKIT_KEY_FILE" in overrides:
        key_file = tmp_path / "keys"
        key_file.write_text(overrides["LIVEKIT_KEY_FILE"])
        overrides = {**overrides, "LIVEKIT_KEY_FILE": str(key_file)}
    # Should the service wrongly accept the configuration, it listens on a private socket and
    # not on the default :8080.
    env = peers.environment(**{"LIVEKIT_JWT_BIND": str(tmp_path / "unused.sock"), **overrides})
    checked = lkjwt.check_config(env)
    assert checked.returncode == 1
    assert message in checked.stderr.splitlines(), checked.stderr
    # The same text when the service itself starts (FastCGI, own socket).
    started = lkjwt.run_once(env)
    assert (started.returncode, message in started.stderr.splitlines()) == (1, True), started.stderr


def test_secrets_never_reach_the_log(start_stack, peers, alice, bob):
    """API secret, OpenID access tokens and the JWTs it issues or sends (§10.1), at debug level,
    along every path a token request can take."""
    service, frontend = start_stack(LIVEKIT_LOG_LEVEL="debug")
    jwts = []
    for endpoint, body in [("/get_token", matrix_client.get_token_body(alice)),
                           ("/get_token", matrix_client.get_token_body(bob)),
                           ("/sfu/get", matrix_client.legacy_body(alice))]:
        response = frontend.post_json(endpoint, body)
        assert response.status == 200, response.body
        jwts.append(response.json()["jwt"])
    # Failures log their reasons; the request's secrets must not be among them.
    mismatch = matrix_client.get_token_body(alice)
    mismatch["member"]["claimed_user_id"] = "@mallory:example.org"
    assert frontend.post_json("/get_token", mismatch).status == 401
    assert frontend.post_json("/get_token", matrix_client.get_token_body(
        matrix_client.Account(peers.full, alice.user_id, "unknown-secret-token"))).status == 401
    trailing_data = json.dumps(matrix_client.get_token_body(alice)).encode() + b" trailing"
    assert frontend.request("POST", "/get_token", trailing_data).status == 400
    assert frontend.post_json("/get_token", matrix_client.get_token_body(bob, delay_id="d", delay_timeout=5)).status == 400
    peers.sfu.fail_with(500)
    assert frontend.post_json("/get_token", matrix_client.get_token_body(alice)).status == 500

    server_tokens = [call.authorization.removeprefix("Bearer ") for call in peers.sfu.calls]
    assert server_tokens and all(server_tokens)
    log = service.process.stderr()
    assert alice.user_id in log, "the token-issued record (§10.2) names the Matrix user"
    secrets = {"API secret": lkjwt.API_SECRET, "alice's token": alice.access_token,
               "bob's token": bob.access_token, "unknown token": "unknown-secret-token"}
    for number, token in enumerate(jwts + server_tokens):
        secrets[f"JWT {number}"] = token
        secrets[f"JWT {number} signature"] = token.rsplit(".", 1)[1]
    leaked = [name for name, value in secrets.items() if value in log]
    assert leaked == []
    for line in log.splitlines():
        assert line.startswith("time=") and " level=" in line and " msg=" in line, f"not logfmt: {line!r}"


def test_version_and_help():
    for flag in ("--version", "--help"):
        shown = lkjwt.run_once(lkjwt.service_environment(livekit_url="", full_access="", ca_file=None), flag)
        assert shown.returncode == 0 and shown.stdout.strip(), (flag, shown)
