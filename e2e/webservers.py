"""nginx, Caddy and lighttpd instances with their own configuration, on random loopback ports.

nginx includes the repository's location snippet verbatim and Caddy runs the repository's
Caddyfile, so the tests exercise exactly what operators install.
"""

import os
from pathlib import Path

from processes import Process, accepts_connections, clean_environment, free_port, wait_until

REPO = Path(__file__).resolve().parent.parent
NGINX_LOCATIONS = REPO / "nginx" / "lkjwt-fcgi.locations.conf"
# The application-service locations, for a server block only the homeserver reaches.
NGINX_APPSERVICE_LOCATIONS = REPO / "nginx" / "lkjwt-fcgi.appservice.conf"
CADDYFILE = REPO / "caddy" / "Caddyfile"


class WebServer:
    process: Process
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait_until_listening(self) -> None:
        try:
            wait_until(lambda: accepts_connections(self.port) or not self.process.running(),
                       f"{self.process.name} listening on {self.port}")
            self.process.require_running()
        except (TimeoutError, RuntimeError):
            self.process.stop()  # the caller never gets hold of it
            raise

    def stop(self) -> None:
        self.process.stop()


class Nginx(WebServer):
    def __init__(self, directory: Path, upstream: str, *, name: str = "nginx", worker_processes: int | str = 1,
                 access_log: bool = True, user: str | None = None, locations: Path = NGINX_LOCATIONS):
        self.directory = directory / name
        self.directory.mkdir()
        self.port = free_port()
        # Relative includes resolve against the configuration's own directory; the snippet uses
        # Debian's stock `include fastcgi_params`.
        (self.directory / "fastcgi_params").symlink_to("/etc/nginx/fastcgi_params")
        config = self.directory / "nginx.conf"
        config.write_text(nginx_config(self.directory, self.port, upstream, worker_processes, access_log, user,
                                       locations))
        self.error_log = self.directory / "error.log"
        self.process = Process(name, ["nginx", "-p", str(self.directory), "-c", str(config),
                                      "-e", str(self.error_log)], clean_environment(), directory)
        self._wait_until_listening()


def nginx_config(directory: Path, port: int, upstream: str, worker_processes: int | str, access_log: bool,
                 user: str | None = None, locations: Path = NGINX_LOCATIONS) -> str:
    # Root starts nginx's workers as `nobody`, who cannot reach sockets in the tests' private
    # temporary directories; `user` (e.g. "www-data") runs them as a deployment does.
    user = f"user {user};" if user else "user root;" if os.geteuid() == 0 else ""
    access = f"access_log {directory}/access.log;" if access_log else "access_log off;"
    return f"""
daemon off;
master_process on;
worker_processes {worker_processes};
{user}
pid {directory}/nginx.pid;
error_log {directory}/error.log info;
events {{
    worker_connections 1024;
}}
http {{
    {access}
    client_body_temp_path {directory}/client_body;
    fastcgi_temp_path {directory}/fastcgi;
    proxy_temp_path {directory}/proxy;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;

    upstream lkjwt_fcgi {{
        server {upstream};
    }}

    server {{
        listen 127.0.0.1:{port};
        include {locations};

        # Test-only: chunked bodies streamed to the service, which then sees an empty CONTENT_LENGTH.
        location /unbuffered/ {{
            client_max_body_size 1m;
            fastcgi_request_buffering off;
            include fastcgi_params;
            fastcgi_pass lkjwt_fcgi;
        }}
    }}
}}
"""


class Caddy(WebServer):
    def __init__(self, directory: Path, socket_path: str, *, name: str = "caddy"):
        home = directory / name
        home.mkdir()
        self.port = free_port()
        env = clean_environment(
            LKJWT_FCGI_SOCKET=socket_path,
            LKJWT_HTTP_BIND="127.0.0.1",
            LKJWT_HTTP_PORT=str(self.port),
            # Caddy keeps state under HOME/XDG directories; not the runner's.
            HOME=str(home), XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"))
        self.process = Process(name, ["caddy", "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
                               env, directory)
        self._wait_until_listening()


class LighttpdCGI(WebServer):
    """lighttpd with mod_cgi running `script` (a wrapper that execs the service) per request.

    The script is reachable at /lkjwt.cgi: lighttpd puts the rest of the path into PATH_INFO.
    """

    script_name = "/lkjwt.cgi"

    def __init__(self, directory: Path, script: str, *, name: str = "lighttpd"):
        root = directory / name
        (root / "htdocs").mkdir(parents=True)
        (root / "uploads").mkdir()
        cgi = root / "htdocs" / self.script_name.lstrip("/")
        cgi.write_text(script)
        cgi.chmod(0o755)
        self.port = free_port()
        config = root / "lighttpd.conf"
        config.write_text(f"""
server.modules = ("mod_cgi")
server.document-root = "{root}/htdocs"
server.bind = "127.0.0.1"
server.port = {self.port}
server.errorlog = "{root}/error.log"
server.upload-dirs = ("{root}/uploads")
cgi.assign = (".cgi" => "")
""")
        self.process = Process(name, ["lighttpd", "-D", "-f", str(config)], clean_environment(), directory)
        self._wait_until_listening()
