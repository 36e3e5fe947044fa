"""Starting, watching and stopping the real processes of a test (by PID, never by name)."""

import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now (for servers that cannot report their own)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(condition, what: str, timeout: float = 10.0):
    """Poll `condition` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not within {timeout} s")
        time.sleep(0.02)


def accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Process:
    """A child process whose stdout and stderr go to files in `log_dir`."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, **popen_args):
        self.name = name
        self.stdout_path = log_dir / f"{name}.stdout"
        self.stderr_path = log_dir / f"{name}.stderr"
        with open(self.stdout_path, "ab") as stdout, open(self.stderr_path, "ab") as stderr:
            self.popen = subprocess.Popen(argv, env=env, stdin=popen_args.pop("stdin", subprocess.DEVNULL),
                                          stdout=stdout, stderr=stderr, **popen_args)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def send_signal(self, signum: int) -> None:
        self.popen.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Ask the process to stop, kill it if it does not; returns its exit status."""
        if self.running():
            self.send_signal(signum)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
        return self.popen.wait()

    def require_running(self) -> None:
        """Fail with the process' own last words if it died, e.g. nginx refusing its config."""
        if not self.running():
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{self.stderr()[-4000:]}")


def clean_environment(**variables: str) -> dict[str, str]:
    """A minimal environment: nothing from the test runner's own (SSL_CERT_FILE, LIVEKIT_*, …)."""
    return {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
            **variables}

