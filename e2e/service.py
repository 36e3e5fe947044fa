"""The service under test: configuration and the ways of starting it (contract §1.3, §2)."""

import os
import shlex
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import fastcgi
from processes import Process, clean_environment, wait_until

REPO = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get("LKJWT_BINARY", REPO / ".build" / "release" / "lkjwt-fcgi"))
SPAWN_FCGI_SCRIPT = REPO / "nginx" / "spawn-fcgi.sh"

API_KEY = "e2e-api-key"
# Long and distinctive, so that finding it in a log cannot be a coincidence.
API_SECRET = "e2e-api-secret-0123456789abcdefghijklmnopqrstuvwxyz"
THREADS = 16
# The fakes listen on loopback, which the default address policy blocks (contract §13.1): the
# harness allows it, as a developer would. Tests of the default policy pass
# LIVEKIT_IP_RANGE_ALLOWLIST=None.
LOOPBACK_ALLOWLIST = "127.0.0.0/8, ::1"


def service_environment(*, livekit_url: str, full_access: str, ca_file: Path | None, **overrides) -> dict:
    """The service's configuration; an override of None removes the variable."""
    variables = {
        "LIVEKIT_URL": livekit_url,
        "LIVEKIT_KEY": API_KEY,
        "LIVEKIT_SECRET": API_SECRET,
        "LIVEKIT_FULL_ACCESS_HOMESERVERS": full_access,
        "LIVEKIT_JOBS_DB": ":memory:",
        # Debug, so that anything the service might leak into its log is there to be found.
        "LIVEKIT_LOG_LEVEL": "debug",
        "LIVEKIT_IP_RANGE_ALLOWLIST": LOOPBACK_ALLOWLIST,
    }
    if ca_file is not None:
        variables["SSL_CERT_FILE"] = str(ca_file)
    variables.update(overrides)
    return clean_environment(**{name: value for name, value in variables.items() if value is not None})


@dataclass
class Service:
    """One long-running FastCGI process and the address a web server reaches it at."""
    process: Process
    upstream: str  # as nginx's `server` directive wants it: unix:/path or host:port

    def wait_until_started(self) -> "Service":
        # Asked directly over FastCGI: a socket alone (spawn-fcgi binds it before exec) would not
        # prove that the service came up, and the start-up log record depends on the log level.
        try:
            wait_until(lambda: not self.process.running() or self._answers_healthz(),
                       f"{self.process.name} answering /healthz over FastCGI")
            self.process.require_running()
        except (TimeoutError, RuntimeError):
            self.process.stop()  # nobody else holds its PID yet
            raise
        return self

    def _answers_healthz(self) -> bool:
        try:
            return fastcgi.get_status(self.upstream, "/healthz") == 200
        except OSError:
            return False

    def stop(self) -> int:
        return self.process.stop(signal.SIGTERM)


def start_under_spawn_fcgi(env: dict, directory: Path, name: str = "lkjwt-fcgi",
                           threads: int = THREADS, prefix: list[str] | None = None) -> Service:
    """The shipped nginx/spawn-fcgi.sh: spawn-fcgi -n binds the socket and execs the service in the
    same process, so our child's PID is the service's. `prefix` runs the script under a command such
    as `ip netns exec NAME` (the socket is a file, reachable from outside that namespace)."""
    socket_path = directory / f"{name}.sock"
    script_env = {
        **env,
        "LKJWT_SOCKET": str(socket_path),
        "LKJWT_BINARY": str(BINARY),
        "LKJWT_THREADS": str(threads),
        "LKJWT_ENV_FILE": "",  # the machine's /etc/lkjwt-fcgi must not leak into the test
        "LKJWT_USER": "",  # stay the test's user: our temporary files are private to it
    }
    process = Process(name, (prefix or []) + [str(SPAWN_FCGI_SCRIPT)], script_env, directory)
    return Service(process, f"unix:{socket_path}").wait_until_started()


def start_with_own_socket(env: dict, directory: Path, bind: str, upstream: str, name: str) -> Service:
    """No inherited socket and no CGI: the service listens on LIVEKIT_JWT_BIND itself."""
    process = Process(name, [str(BINARY)], {**env, "LIVEKIT_JWT_BIND": bind}, directory)
    return Service(process, upstream).wait_until_started()


def start_socket_activated(env: dict, directory: Path, name: str) -> Service:
    """What systemd does for lkjwt-fcgi.socket: a listening socket on fd 3, LISTEN_FDS=1 and
    LISTEN_PID set to the service's own PID (the shell's $$ survives its exec). bash, because dash
    cannot redirect from a descriptor above 9."""
    socket_path = directory / f"{name}.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(socket_path))
    listener.listen(64)
    command = f"exec 3<&{listener.fileno()}; LISTEN_PID=$$ LISTEN_FDS=1 exec {shlex.quote(str(BINARY))}"
    try:
        process = Process(name, ["/bin/bash", "-c", command], env, directory, pass_fds=[listener.fileno()])
    finally:
        listener.close()
    return Service(process, f"unix:{socket_path}").wait_until_started()


def cgi_wrapper_script(env: dict, stderr_log: Path) -> str:
    """A CGI program that sets the service's configuration and execs it: web servers hand CGI
    programs only the request's variables, not their own environment."""
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items()))
    return (f"#!/bin/sh\n{exports}"
            f"exec {shlex.quote(str(BINARY))} 2>>{shlex.quote(str(stderr_log))}\n")


def check_config(env: dict) -> subprocess.CompletedProcess:
    return run_once(env, "--check-config")


def run_once(env: dict, *arguments: str) -> subprocess.CompletedProcess:
    """Run the binary in the foreground, for modes and failures that end the process by themselves."""
    return subprocess.run([str(BINARY), *arguments], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=30)
