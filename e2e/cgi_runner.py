"""The service as a plain CGI program (contract §1.3): lighttpd running it once per request beside a
`--jobs` runner, and one-shot invocations of the binary."""

import subprocess
from dataclasses import dataclass
from pathlib import Path

import service as lkjwt
from webhooks import WebhookSender
from webservers import LighttpdCGI
from worker_pool import JobsRunner, ServiceClient


class CGIStack:
    """A plain-CGI deployment: lighttpd runs the binary once per request (through the wrapper script
    of service.py), and `lkjwt-fcgi --jobs` (started separately) runs the timers."""

    def __init__(self, directory: Path, env: dict, store, *, name: str = "cgi"):
        self.directory = directory
        self.env = env
        self.store = store
        self.name = name
        self.cgi_log = directory / f"{name}.stderr"
        self.cgi_log.touch()
        self.server = LighttpdCGI(directory, lkjwt.cgi_wrapper_script(env, self.cgi_log), name=f"lighttpd-{name}")
        self.client = ServiceClient(self.server.base_url, LighttpdCGI.script_name)
        self.webhooks = WebhookSender(self.server.base_url, lkjwt.API_KEY, lkjwt.API_SECRET, prefix=LighttpdCGI.script_name)
        self.runners: list[JobsRunner] = []

    def start_runner(self) -> "JobsRunner":
        runner = JobsRunner(self.env, self.directory, name=f"{self.name}-jobs-{len(self.runners) + 1}")
        self.runners.append(runner)
        return runner

    def cgi_stderr(self) -> str:
        return self.cgi_log.read_text(errors="replace")

    def stderr(self) -> str:
        return self.cgi_stderr() + "".join(runner.process.stderr() for runner in self.runners)

    def stop(self) -> None:
        self.server.stop()
        for runner in self.runners:
            runner.stop()


@dataclass
class CGIResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    stderr: str


def run_cgi(env: dict, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> CGIResponse:
    """One request to the binary as a plain CGI program (contract §1.3): CGI/1.1 variables, body on
    stdin, response on stdout. stdin is a pipe, not a listening socket."""
    variables = {**env, "GATEWAY_INTERFACE": "CGI/1.1", "SERVER_PROTOCOL": "HTTP/1.1", "REQUEST_METHOD": method,
                 "SCRIPT_NAME": path, "REQUEST_URI": path, "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
                 "SERVER_NAME": "localhost", "SERVER_PORT": "80", "CONTENT_LENGTH": str(len(body)),
                 "CONTENT_TYPE": "application/json"}
    for name, value in (headers or {}).items():
        variables["HTTP_" + name.upper().replace("-", "_")] = value
    done = subprocess.run([str(lkjwt.BINARY)], env=variables, input=body, capture_output=True, timeout=30)
    assert done.returncode == 0, (done.returncode, done.stderr.decode(errors="replace"))
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    parsed = {}
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    status = int(parsed.get("status", "200").split()[0])
    return CGIResponse(status, parsed, payload, done.stderr.decode(errors="replace"))
