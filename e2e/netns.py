"""A private network namespace with its own DNS server, for discovery tests against real DNS.

`ip netns exec NAME` runs a process in the namespace with /etc/netns/NAME/resolv.conf bind-mounted
over /etc/resolv.conf: that is how the service (libresolv for SRV, getaddrinfo in libcurl) gets the
namespace's dnsmasq. Python code of the tests joins the namespace per thread with setns(2).
"""

import ctypes
import os
import shutil
import subprocess
import threading
from pathlib import Path

from processes import Process, clean_environment, wait_until

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL("libc.so.6", use_errno=True)


class NamespaceUnavailable(Exception):
    """Network namespaces cannot be made here (no CAP_SYS_ADMIN, no iproute2)."""


class NetworkNamespace:
    def __init__(self, name: str):
        self.name = name
        self.etc = Path("/etc/netns") / name
        if shutil.which("ip") is None:
            raise NamespaceUnavailable("the `ip` command (iproute2) is not installed")
        created = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
        if created.returncode != 0:
            raise NamespaceUnavailable(f"`ip netns add` failed: {created.stderr.strip()}")
        self.run_command(["ip", "link", "set", "lo", "up"])
        self.etc.mkdir(parents=True, exist_ok=True)
        (self.etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:2\n")
        # Names the tests use are answered by dnsmasq, not by the host's /etc/hosts.
        (self.etc / "hosts").write_text("127.0.0.1 localhost\n")

    def prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def run_command(self, argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(self.prefix() + argv, check=True, capture_output=True, text=True)

    def call(self, function):
        """Run `function` on a thread inside the namespace and return its result. Sockets it creates
        stay in the namespace, whichever thread uses them later."""
        result = {}

        def enter_and_run():
            with open(f"/var/run/netns/{self.name}") as handle:
                if _libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    result["error"] = OSError(ctypes.get_errno(), "setns failed")
                    return
            try:
                result["value"] = function()
            except BaseException as error:  # handed to the caller's thread
                result["error"] = error

        thread = threading.Thread(target=enter_and_run)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "delete", self.name], capture_output=True)
        shutil.rmtree(self.etc, ignore_errors=True)


class Dnsmasq:
    """dnsmasq inside the namespace on 127.0.0.1:53, answering only from its own records and logging
    every query, so tests can count SRV lookups."""

    def __init__(self, namespace: NetworkNamespace, directory: Path, records: list[str]):
        self.log = directory / "dnsmasq.log"
        config = directory / "dnsmasq.conf"
        config.write_text("\n".join([
            "no-resolv", "no-hosts", "no-poll", "bind-interfaces", "listen-address=127.0.0.1", "port=53",
            "log-queries", f"log-facility={self.log}", "user=root", "pid-file=",
            # Answers are cached by nobody but the service: every lookup reaches the log.
            "local-ttl=300", *records, ""]))
        self.process = Process("dnsmasq", namespace.prefix() + ["dnsmasq", "--keep-in-foreground", f"--conf-file={config}"],
                               clean_environment(), directory)
        wait_until(lambda: self.log.exists() and "started" in self.log.read_text() or not self.process.running(),
                   "dnsmasq start-up")
        self.process.require_running()

    def queries(self, name: str, record_type: str) -> int:
        """How often `name` was asked for records of `record_type` (e.g. SRV)."""
        needle = f"query[{record_type}] {name} "
        return sum(1 for line in self.log.read_text().splitlines() if needle in line)

    def stop(self) -> None:
        self.process.stop()
