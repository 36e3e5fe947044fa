"""The deployment files as shipped, beyond what running them in the other tests shows."""

import shutil
import subprocess

import pytest

from processes import free_port
from service import BINARY, REPO


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
