"""CPU pinning shared by the benchmarks: the system under test (service and its web server) on one
CPU, the load (wrk, fakes, this script) on the other, so that neither steals the other's CPU and the
figures do not depend on how the scheduler happened to spread them."""

import os
import subprocess

SERVICE_CPU, LOAD_CPU = 0, 1


def pin(pid: int, cpu: int = SERVICE_CPU) -> None:
    """Every thread of `pid` and of its children (nginx's workers) onto `cpu`."""
    pids = [str(pid)] + subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    for each in pids:
        subprocess.run(["taskset", "-a", "-p", "-c", str(cpu), each], check=True, capture_output=True)


def pin_this_process(cpu: int = LOAD_CPU) -> None:
    """This thread (at the start: the whole script) and what it starts from now on onto `cpu`."""
    os.sched_setaffinity(0, {cpu})


def on_cpu(cpu: int) -> list[str]:
    """A command prefix that runs the command on `cpu`."""
    return ["taskset", "-c", str(cpu)]


def require_two_cpus() -> None:
    available = os.sched_getaffinity(0)
    if not {SERVICE_CPU, LOAD_CPU} <= available:
        raise SystemExit(f"the benchmark pins to CPUs {SERVICE_CPU} and {LOAD_CPU}; this process may use {sorted(available)}")
