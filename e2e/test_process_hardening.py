"""Processes, files and logs (contract §13.6, §2.1 rev. 2, §3.8 rev. 2): stop signals at any moment,
the own socket's mode, group and default address, the SQLite store's modes, log escaping."""

import fcntl
import grp
import os
import shlex
import signal
import socket
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import http_client
import matrix_client
import service as lkjwt
from processes import Process, free_port, wait_until
from webservers import Nginx

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1, signal.SIGQUIT)
SHUTTING_DOWN = 'msg="Shutting down"'
# What §13.6 says must never reach the log raw.
LINE_BREAKERS = [chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)]


def launch_without_waiting(mode: str, env: dict, directory: Path, **popen_args) -> Process:
    """The service in one of its long-lived modes (§1.3), not waited for: it may still be starting."""
    socket_path = directory / f"{mode}.sock"
    if mode == "own-socket":
        return Process(mode, [str(lkjwt.BINARY)], {**env, "LIVEKIT_JWT_BIND": str(socket_path)}, directory, **popen_args)
    if mode == "spawn-fcgi":  # fd 0; spawn-fcgi -n execs the service in place
        return Process(mode, ["spawn-fcgi", "-n", "-s", str(socket_path), "--", str(lkjwt.BINARY)], env, directory,
                       **popen_args)
    if mode == "systemd":  # fd 3, LISTEN_FDS/LISTEN_PID
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(socket_path))
        listener.listen(64)
        command = (f"exec 3<&{listener.fileno()}; "
                   f"LISTEN_PID=$$ LISTEN_FDS=1 exec {shlex.quote(str(lkjwt.BINARY))}")
        try:
            return Process(mode, ["/bin/bash", "-c", command], env, directory, pass_fds=[listener.fileno()],
                           **popen_args)
        finally:
            listener.close()
    assert mode == "jobs"
    return Process(mode, [str(lkjwt.BINARY), "--jobs"], env, directory, **popen_args)


# MARK: Stop signals


@pytest.mark.parametrize("mode,signum", [(mode, signal.SIGTERM) for mode in ("own-socket", "spawn-fcgi", "systemd", "jobs")]
                         + [("spawn-fcgi", signum) for signum in STOP_SIGNALS[1:]])
def test_stop_signal_during_start_up_stops_gracefully(peers, tmp_path, mode, signum):
    """A stop signal that arrives while the process is still opening its job store waits until the
    service is up, then stops it the graceful way: one `Shutting down`, exit 0. The test holds the
    store's lock file, which the service takes right after creating the database, so the signal is
    sure to land inside start-up. (SIGUSR1 is what multiwatch sends: a worker still starting when
    multiwatch was stopped used to die of it without a word.)"""
    database = tmp_path / "jobs" / "jobs.sqlite3"
    database.parent.mkdir()
    lock = os.open(f"{database}.recovery-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        process = launch_without_waiting(mode, peers.environment(LIVEKIT_JOBS_DB=str(database)), tmp_path)
        # The database file is created after the stop signals are blocked and before the lock is taken.
        wait_until(lambda: database.exists() or not process.running(), "the service creating its database")
        time.sleep(0.2)
        assert process.running(), process.stderr()
        assert "Starting service" not in process.stderr(), "still opening the store"
        process.send_signal(signum)
        time.sleep(0.2)
        assert process.running(), f"signal {signum} killed the process during start-up"
    finally:
        os.close(lock)
    assert process.wait(20) == 0, process.stderr()
    log = process.stderr()
    assert "Starting service" in log
    assert log.count(SHUTTING_DOWN) == 1, log


@pytest.mark.parametrize("mode", ["spawn-fcgi", "own-socket", "systemd"])
def test_stop_signals_repeated_while_draining_change_nothing(start_stack, peers, tmp_path, mode):
    """SIGTERM, then every stop signal again while a request is still in flight: the request gets its
    answer, the process logs `Shutting down` once and exits 0."""
    launch = {
        "spawn-fcgi": lkjwt.start_under_spawn_fcgi,
        "own-socket": lambda env, directory, name: lkjwt.start_with_own_socket(
            env, directory, str(directory / "own.sock"), f"unix:{directory / 'own.sock'}", name),
        "systemd": lkjwt.start_socket_activated,
    }[mode]
    service, frontend = start_stack(launch=launch)
    slow = matrix_client.register(peers.full, "slow", delay=3)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(frontend.post_json, "/get_token", matrix_client.get_token_body(slow))
        wait_until(lambda: peers.full.userinfo_requests, "the token request reaching the homeserver")
        service.process.send_signal(signal.SIGTERM)
        wait_until(lambda: SHUTTING_DOWN in service.process.stderr(), "the service logging its shutdown")
        for repeated in STOP_SIGNALS:
            service.process.send_signal(repeated)
            time.sleep(0.05)
        assert service.process.running(), "a repeated stop signal killed the draining process"
        response = pending.result(timeout=30)
    assert response.status == 200, response.body
    assert service.process.wait(timeout=15) == 0
    assert service.process.stderr().count(SHUTTING_DOWN) == 1


# MARK: The own socket


@pytest.fixture
def public_directory():
    """A directory other users can traverse (the tests' temporary directories are root's alone)."""
    directory = Path(tempfile.mkdtemp(prefix="lkjwt-socket-"))
    directory.chmod(0o711)
    yield directory
    for entry in directory.iterdir():
        entry.unlink()
    directory.rmdir()


@pytest.mark.parametrize("group", [None, "www-data"])
def test_own_unix_socket_is_0660_and_reachable_through_its_group(peers, tmp_path, public_directory, group):
    """§13.6: never world-writable, whatever the umask; with LIVEKIT_JWT_SOCKET_GROUP=www-data, nginx
    workers running as www-data (as on Debian) get in through the group, and without it they do not."""
    socket_path = public_directory / "fcgi.sock"
    overrides = {"LIVEKIT_JWT_BIND": str(socket_path)}
    if group:
        overrides["LIVEKIT_JWT_SOCKET_GROUP"] = group
    process = Process("lkjwt-fcgi", [str(lkjwt.BINARY)], peers.environment(**overrides), tmp_path, umask=0)
    service = lkjwt.Service(process, f"unix:{socket_path}").wait_until_started()
    nginx = None
    try:
        status = os.stat(socket_path)
        assert stat.S_ISSOCK(status.st_mode)
        assert stat.S_IMODE(status.st_mode) == 0o660
        assert status.st_gid == (grp.getgrnam(group).gr_gid if group else os.getgid())
        nginx = Nginx(tmp_path, f"unix:{socket_path}", user="www-data")
        assert http_client.request(nginx.base_url, "GET", "/healthz").status == (200 if group else 502)
    finally:
        if nginx:
            nginx.stop()
        assert service.stop() == 0
    assert not socket_path.exists(), "the own socket is removed at exit"


def test_unknown_socket_group_fails_start_up(peers, tmp_path):
    socket_path = tmp_path / "fcgi.sock"
    started = lkjwt.run_once(peers.environment(LIVEKIT_JWT_BIND=str(socket_path),
                                               LIVEKIT_JWT_SOCKET_GROUP="no-such-group-here"))
    assert started.returncode == 1
    [line] = [line for line in started.stderr.splitlines() if line.startswith("Could not listen on ")]
    assert line.startswith(f'Could not listen on "unix:{socket_path}": '), line
    assert "no-such-group-here" in line
    assert not socket_path.exists()


def listening_addresses(port: int) -> set[str]:
    """Local addresses in LISTEN state on `port`, from /proc/net/tcp{,6} (hex, as the kernel writes them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                address, hex_port = fields[1].split(":")
                if int(hex_port, 16) == port and fields[3] == "0A":
                    found.add(address)
    return found


LOOPBACK_V4 = "0100007F"
ANY_V4, ANY_V6 = "00000000", "0" * 32


@pytest.mark.parametrize("variable", ["LIVEKIT_JWT_PORT", "LIVEKIT_JWT_BIND"])
def test_own_tcp_socket_is_loopback_unless_bound_elsewhere_explicitly(peers, tmp_path, variable):
    """§2.1 rev. 2: LIVEKIT_JWT_PORT means 127.0.0.1:<port>; LIVEKIT_JWT_BIND=:<port> listens on every
    interface as it says, with a start-up warning."""
    port = free_port()
    value = str(port) if variable == "LIVEKIT_JWT_PORT" else f":{port}"
    env = peers.environment(**{variable: value})
    service = lkjwt.Service(Process("lkjwt-fcgi", [str(lkjwt.BINARY)], env, tmp_path),
                            f"127.0.0.1:{port}").wait_until_started()
    try:
        addresses = listening_addresses(port)
        log = service.process.stderr()
        if variable == "LIVEKIT_JWT_PORT":
            assert addresses == {LOOPBACK_V4}
            assert "reachable from other hosts" not in log
        else:
            assert addresses & {ANY_V4, ANY_V6}, addresses
            [warning] = [line for line in log.splitlines() if "reachable from other hosts" in line]
            assert " level=warn " in warning and f"LIVEKIT_JWT_BIND=:{port}" in warning
    finally:
        assert service.stop() == 0


# MARK: Files


def test_sqlite_store_files_are_private(peers, tmp_path):
    """§13.6: delay IDs are capabilities; the database, its -wal and -shm are 0600 even under umask 0."""
    database = tmp_path / "jobs" / "jobs.sqlite3"
    socket_path = tmp_path / "fcgi.sock"
    env = peers.environment(LIVEKIT_JOBS_DB=str(database), LIVEKIT_JWT_BIND=str(socket_path))
    service = lkjwt.Service(Process("lkjwt-fcgi", [str(lkjwt.BINARY)], env, tmp_path, umask=0),
                            f"unix:{socket_path}").wait_until_started()
    try:
        files = [database, Path(f"{database}-wal"), Path(f"{database}-shm"), Path(f"{database}.recovery-lock")]
        wait_until(lambda: all(path.exists() for path in files), "the database and its WAL files")
        modes = {path.name: oct(stat.S_IMODE(path.stat().st_mode)) for path in files}
        assert modes == {path.name: "0o600" for path in files}
        assert oct(stat.S_IMODE(database.parent.stat().st_mode)) == "0o700"
    finally:
        assert service.stop() == 0


# MARK: Logs


def unquoted(value: str) -> str:
    """A logfmt value as a reader decodes it (the service's escapes: \\\\, \\", \\uXXXX)."""
    if not value.startswith('"'):
        return value
    out, index, body = [], 0, value[1:-1]
    while index < len(body):
        char = body[index]
        if char != "\\":
            out.append(char)
            index += 1
        elif body[index + 1] == "u":
            out.append(chr(int(body[index + 2:index + 6], 16)))
            index += 6
        else:
            out.append(body[index + 1])
            index += 2
    return "".join(out)


def field(line: str, name: str) -> str:
    """The raw (still quoted) value of `name=` in a logfmt line."""
    start = line.index(f" {name}=") + len(name) + 2
    if line[start] != '"':
        return line[start:].split(" ", 1)[0]
    end = start + 1
    while line[end] != '"':
        end += 2 if line[end] == "\\" else 1
    return line[start:end + 1]


def test_logged_request_values_stay_on_one_line(start_stack, alice):
    """A claimed user ID carrying a line separator, C1 controls, DEL and a newline is logged escaped:
    the record stays one line, and the value can be read back exactly."""
    service, frontend = start_stack()
    claimed = "@alice\u2028time=forged level=error msg=\u0085\u009b2J\x7f\n\u2029:x"
    body = matrix_client.get_token_body(alice)
    body["member"]["claimed_user_id"] = claimed
    assert frontend.post_json("/get_token", body).status == 401
    log = service.process.stderr()
    assert not [char for char in LINE_BREAKERS if char in log.replace("\n", "")], "a raw line breaker in the log"
    for line in log.splitlines():
        assert line.startswith("time="), f"a record broken in two: {line!r}"
    [record] = [line for line in log.splitlines() if "Claimed user ID does not match" in line]
    logged = field(record, "claimedUserId")
    assert "\\u2028" in logged and "\\u0085" in logged and "\\u009b" in logged
    assert unquoted(logged) == claimed


@pytest.mark.parametrize("level", ["info", "debug"])
def test_health_checks_are_logged_at_debug(start_stack, level):
    """§3.8 rev. 2: a load balancer probing every second must not fill an info log."""
    service, frontend = start_stack(LIVEKIT_LOG_LEVEL=level)
    for _ in range(3):
        assert frontend.request("GET", "/healthz").status == 200
    checks = [line for line in service.process.stderr().splitlines() if 'msg="Health check"' in line]
    if level == "info":
        assert checks == []
    else:
        # The harness's own readiness probe counts too.
        assert len(checks) >= 3 and all(" level=debug " in line for line in checks)
