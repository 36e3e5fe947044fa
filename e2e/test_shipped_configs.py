"""The deployment files as shipped, beyond what running them in the other tests shows."""

import shutil
import subprocess

import pytest

import fastcgi
import http_client
from processes import free_port
from service import BINARY, REPO
from webservers import NGINX_APPSERVICE_LOCATIONS, Caddy, Nginx


def test_nginx_snippets_with_the_shipped_upstream_pass_nginx_t(tmp_path):
    """The other tests define their own upstream; this checks lkjwt-fcgi.upstream.conf with the
    locations as an operator would include them."""
    (tmp_path / "fastcgi_params").symlink_to("/etc/nginx/fastcgi_params")
    config = tmp_path / "nginx.conf"
    config.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    include {REPO}/nginx/lkjwt-fcgi.upstream.conf;
    server {{
        listen 127.0.0.1:{free_port()};
        include {REPO}/nginx/lkjwt-fcgi.locations.conf;
    }}
}}
""")
    checked = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_units_verify(tmp_path):
    for unit in ("lkjwt-fcgi.service", "lkjwt-fcgi.socket"):
        text = (REPO / "nginx" / unit).read_text()
        # verify insists that ExecStart exists; point it at the binary under test.
        (tmp_path / unit).write_text(text.replace("/usr/local/bin/lkjwt-fcgi", str(BINARY)))
    checked = subprocess.run(["systemd-analyze", "verify", str(tmp_path / "lkjwt-fcgi.service"),
                              str(tmp_path / "lkjwt-fcgi.socket")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


# What Synapse 1.163 sends to `io.element.msc4512.proxy_url` (AS-MODE-NOTES §5.2), and the FastCGI
# params the service reads them from.
APPSERVICE_HEADERS = {
    "Authorization": ("HTTP_AUTHORIZATION", "Bearer hs-token"),
    "X-Matrix-User-Identifier": ("HTTP_X_MATRIX_USER_IDENTIFIER", "@alice:example.org"),
    "X-Matrix-Origin": ("HTTP_X_MATRIX_ORIGIN", "origin.example.org"),
}
FORWARDED = [
    ("POST", "/_matrix/client/v1/rtc/livekit/get_token"),
    ("POST", "/_matrix/client/unstable/io.element.msc4195/rtc/livekit/get_token"),
    ("POST", "/_matrix/client/v1/rtc/livekit/delegate_delayed_leave"),
    ("POST", "/_matrix/federation/v1/rtc/livekit/get_token"),
    ("POST", "/_matrix/federation/unstable/io.element.msc4195/rtc/livekit/get_token"),
    ("POST", "/_matrix/app/v1/ping"),
    ("PUT", "/_matrix/app/v1/transactions/42"),
]
NOT_FORWARDED = ["/_matrix/client/v3/sync", "/_matrix/client/v1/rtc/livekitx/get_token", "/_matrix/app/v1/users/x"]


def assert_appservice_params(base_url: str, recorder, script_name_prefix: str = "") -> None:
    for method, path in FORWARDED:
        before = len(recorder.requests)
        headers = {name: value for name, (_, value) in APPSERVICE_HEADERS.items()}
        response = http_client.request(base_url, method, path, b"{}", headers={**headers, "Content-Type": "application/json"})
        assert response.status == 200, (path, response.status, response.body[:300])
        params = recorder.requests[before]
        assert params["REQUEST_METHOD"] == method
        assert params.get("SCRIPT_NAME", "") + params.get("PATH_INFO", "") == script_name_prefix + path, params
        for header, (param, value) in APPSERVICE_HEADERS.items():
            assert params.get(param) == value, (header, param, params)
    count = len(recorder.requests)
    for path in NOT_FORWARDED:
        assert http_client.request(base_url, "POST", path, b"{}").status == 404, path
    assert len(recorder.requests) == count, "a path that is not the service's reached it"


def test_nginx_appservice_snippet_passes_synapses_headers(tmp_path):
    """lkjwt-fcgi.appservice.conf as shipped, in a server block of its own as its comment shows."""
    recorder = fastcgi.ParamsRecorder(str(tmp_path / "recorder.sock"))
    nginx = Nginx(tmp_path, recorder.upstream, name="nginx-appservice", locations=NGINX_APPSERVICE_LOCATIONS)
    try:
        assert_appservice_params(nginx.base_url, recorder)
    finally:
        nginx.stop()
        recorder.stop()


def test_caddyfile_appservice_paths_pass_synapses_headers(tmp_path):
    recorder = fastcgi.ParamsRecorder(str(tmp_path / "recorder.sock"))
    caddy = Caddy(tmp_path, recorder.socket_path)
    try:
        assert_appservice_params(caddy.base_url, recorder)
    finally:
        caddy.stop()
        recorder.stop()
