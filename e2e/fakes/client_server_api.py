"""Fake Matrix client-server API: the MSC4140 delayed-event `restart` and `send` actions over plain
HTTP (contract §9.2), scriptable per delay ID and action, recording every call with its arrival time.

By default it behaves like a homeserver that holds every delayed event it is asked about: `restart`
and `send` answer 200 `{}`, and once a `send` was accepted the event is gone, so later calls for that
delay ID answer 404 `M_NOT_FOUND` (what Synapse does). Scripts override that per delay ID and action:
the scripted replies are used in order, the last one repeats.
"""

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from fakes.records import matching

PREFIX = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events/"
ACTIONS = ("restart", "send")


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0  # seconds before answering (the request has arrived and is recorded already)
    then: Callable[[], None] | None = None  # called right after the answer was written (e.g. to kill the caller)


OK = Reply(200)
NOT_FOUND = Reply(404, json.dumps({"errcode": "M_NOT_FOUND", "error": "Delayed event not found"}).encode())


def rate_limited(*, retry_after: str | None = None, retry_after_ms: int | None = None) -> Reply:
    """429 M_LIMIT_EXCEEDED as Synapse sends it: `Retry-After` header and/or `retry_after_ms`."""
    body = {"errcode": "M_LIMIT_EXCEEDED", "error": "Too Many Requests"}
    if retry_after_ms is not None:
        body["retry_after_ms"] = retry_after_ms
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return Reply(429, json.dumps(body).encode(), headers)


def server_error(status: int = 500) -> Reply:
    return Reply(status, json.dumps({"errcode": "M_UNKNOWN", "error": "Internal server error"}).encode())


def slow(reply: Reply, seconds: float) -> Reply:
    return Reply(reply.status, reply.body, reply.headers, seconds)


@dataclass(frozen=True)
class Call:
    delay_id: str  # percent-decoded
    action: str  # restart | send | the unexpected path segment
    raw_path: str
    method: str
    content_type: str | None
    authorization: str | None
    body: bytes
    arrived: float  # time.monotonic() at arrival
    arrived_wall: float  # time.time() at arrival
    status: int  # what the fake answered


class FakeClientServerAPI:
    def __init__(self):
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._server.fake = self
        self._changed = threading.Condition()
        self._calls: list[Call] = []
        self._scripts: dict[tuple[str, str], list[Reply]] = {}
        self._fired: set[str] = set()  # delay IDs whose send was accepted
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"cs-api-{self.port}", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL the service is told about through LIVEKIT_CS_API_URL_OVERRIDES."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "FakeClientServerAPI":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # Scripting

    def script(self, delay_id: str, action: str, *replies: Reply) -> None:
        """Answer `action` calls for `delay_id` with these replies in order; the last one repeats."""
        assert action in ACTIONS and replies
        with self._changed:
            self._scripts[(delay_id, action)] = list(replies)

    def retire(self, delay_ids) -> None:
        """Forget these delayed events (404 for everything), so that leftover jobs end quickly."""
        for delay_id in delay_ids:
            for action in ACTIONS:
                self.script(delay_id, action, NOT_FOUND)

    # Observations

    def calls(self, delay_id: str | None = None, action: str | None = None) -> list[Call]:
        with self._changed:
            return matching(self._calls, delay_id=delay_id, action=action)

    def sends(self, delay_id: str) -> list[Call]:
        return self.calls(delay_id, "send")

    def restarts(self, delay_id: str) -> list[Call]:
        return self.calls(delay_id, "restart")

    def accepted_sends(self, delay_id: str) -> list[Call]:
        """Sends the homeserver carried out (answered 2xx): a delayed event must have at most one."""
        return [call for call in self.sends(delay_id) if 200 <= call.status < 300]

    def unexpected_calls(self) -> list[Call]:
        return [call for call in self.calls() if call.action not in ACTIONS]

    def wait_for(self, predicate, what: str, timeout: float):
        """Block until `predicate(fake)` is truthy (re-evaluated on every call); returns its value."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(self)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{what} not within {timeout} s; calls seen: {self._summary()}")
                self._changed.wait(min(remaining, 0.1))

    def wait_for_calls(self, delay_id: str, action: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        return self.wait_for(lambda fake: (found := fake.calls(delay_id, action)) and len(found) >= count and found,
                             f"{count} {action} call(s) for {delay_id}", timeout)

    def _summary(self) -> str:
        return ", ".join(f"{call.action}:{call.delay_id}={call.status}" for call in self._calls[-30:]) or "none"

    # Request handling

    def _answer(self, delay_id: str, action: str) -> Reply:
        with self._changed:
            script = self._scripts.get((delay_id, action))
            if script:
                reply = script.pop(0) if len(script) > 1 else script[0]
            elif delay_id in self._fired:
                reply = NOT_FOUND
            else:
                reply = OK
            if action == "send" and 200 <= reply.status < 300:
                self._fired.add(delay_id)
            return reply

    def _record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self):
        arrived, arrived_wall = time.monotonic(), time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length") or "0"))
        fake: FakeClientServerAPI = self.server.fake
        path = self.path.split("?", 1)[0]
        delay_id, action = "", path
        if path.startswith(PREFIX):
            segments = path[len(PREFIX):].split("/")
            if len(segments) == 2:
                delay_id, action = unquote(segments[0]), segments[1]
        if action in ACTIONS:
            reply = fake._answer(delay_id, action)
        else:
            reply = Reply(404, json.dumps({"errcode": "M_UNRECOGNIZED", "error": "Unrecognized request"}).encode())
        fake._record(Call(delay_id, action, self.path, "POST", self.headers.get("Content-Type"),
                          self.headers.get("Authorization"), body, arrived, arrived_wall, reply.status))
        if reply.delay:
            time.sleep(reply.delay)
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            for name, value in reply.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:
            pass  # the caller went away (a killed worker)
        if reply.then is not None:
            reply.then()

    def do_GET(self):
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        pass
