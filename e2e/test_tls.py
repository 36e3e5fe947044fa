"""Certificate verification of outgoing HTTPS (contract §2.1 SSL_CERT_FILE/SSL_CERT_DIR and
LIVEKIT_INSECURE_SKIP_VERIFY_TLS, §5.5). The fake homeservers use a self-signed certificate."""

import shutil
import subprocess

import pytest

import expect
import matrix_client

SKIP_VERIFY = "YES_I_KNOW_WHAT_I_AM_DOING"
SKIP_VERIFY_BANNER = [
    "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
    "!!! WARNING !!!  LIVEKIT_INSECURE_SKIP_VERIFY_TLS        !!! WARNING !!!",
    "!!! WARNING !!!  Allow to skip invalid TLS certificates  !!! WARNING !!!",
    "!!! WARNING !!!  Use only for testing or debugging       !!! WARNING !!!",
]


@pytest.mark.parametrize("skip_verify", [None, "", "true", SKIP_VERIFY.lower()],
                         ids=["unset", "empty", "true", "lower-case"])
def test_untrusted_homeserver_certificate_is_rejected(start_stack, peers, alice, skip_verify):
    """Without SSL_CERT_FILE the system store does not know the certificate: the handshake fails,
    so the homeserver never sees the OpenID token."""
    service, frontend = start_stack(SSL_CERT_FILE=None, LIVEKIT_INSECURE_SKIP_VERIFY_TLS=skip_verify)
    response = frontend.post_json("/get_token", matrix_client.get_token_body(alice))
    expect.matrix_error(response, 401, "M_UNAUTHORIZED", expect.UNAUTHORIZED)
    assert peers.full.userinfo_requests == []
    assert peers.full.tls_handshakes == 0
    assert SKIP_VERIFY_BANNER[1] not in service.process.stderr()


def test_skip_verify_accepts_the_self_signed_certificate(start_stack, peers, alice):
    service, frontend = start_stack(SSL_CERT_FILE=None, LIVEKIT_INSECURE_SKIP_VERIFY_TLS=SKIP_VERIFY)
    response = frontend.post_json("/get_token", matrix_client.get_token_body(alice))
    assert response.status == 200, response.body
    assert [r.access_token for r in peers.full.userinfo_requests] == [alice.access_token]
    log = service.process.stderr()
    for line in SKIP_VERIFY_BANNER:
        assert line in log


def test_ssl_cert_dir_is_a_trust_store_too(start_stack, peers, alice, tmp_path):
    """A hashed CA directory (as `openssl rehash` makes it) instead of a bundle file."""
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    shutil.copy(peers.ca_file, ca_dir / "homeserver.pem")
    subprocess.run(["openssl", "rehash", str(ca_dir)], check=True, capture_output=True)
    _, frontend = start_stack(SSL_CERT_FILE=None, SSL_CERT_DIR=str(ca_dir))
    response = frontend.post_json("/get_token", matrix_client.get_token_body(alice))
    assert response.status == 200, response.body
