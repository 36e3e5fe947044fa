"""A real Synapse 1.163.2 (from PyPI, installed by scripts/install-synapse) for the application-service
tests: loopback, SQLite, the experimental features of AS-MODE-NOTES §5.3, and a small client for what
the tests need of it (users, rooms, membership, delayed events).

Synapse takes seconds to start: start one per module, not per test.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

import http_client
from processes import Process, clean_environment, free_port, wait_until

VERSION = "1.163.2"
VENV = Path(os.environ.get("LKJWT_SYNAPSE_VENV", f"/var/cache/lkjwt-fcgi/synapse-{VERSION}"))
PYTHON = VENV / "bin" / "python"
# Written by scripts/install-synapse once pip has finished: a half-installed venv is not one.
INSTALLED_MARKER = VENV / "installed"
START_TIMEOUT = 120.0  # a cold start on a loaded two-core machine took 18 s; generous

IS_JOINED_SCOPE = "urn:matrix:client:io.element.msc4502:rooms:is_joined"
DELAYED_EVENTS = "/_matrix/client/unstable/org.matrix.msc4140/delayed_events"
CALL_MEMBER = "org.matrix.msc3401.call.member"
# Every limit that a test's burst of requests could hit, raised: the tests are about the service.
GENEROUS = {"per_second": 100000, "burst_count": 100000}


def missing_reason() -> str | None:
    """Why the Synapse tests cannot run here, or None."""
    if not INSTALLED_MARKER.exists():
        return f"Synapse {VERSION} is not installed in {VENV}: run scripts/install-synapse (scripts/test does)"
    return None


@dataclass(frozen=True)
class User:
    synapse: "Synapse"
    user_id: str
    access_token: str
    device_id: str

    def request(self, method: str, path: str, document=None, *, query: dict | None = None,
                token: str | None = None) -> http_client.Response:
        """A client-server API call with this user's access token (or `token`)."""
        return self.synapse.request(method, path, document, query=query, token=token or self.access_token)

    def call(self, method: str, path: str, document=None, **options) -> dict:
        """Like `request`, for calls that must succeed; returns the JSON answer."""
        response = self.request(method, path, document, **options)
        assert response.status == 200, f"{method} {path}: {response.status} {response.body[:500]!r}"
        return response.json()

    def create_room(self, **extra) -> str:
        """A private room this user owns, where every member may send MatrixRTC membership events."""
        document = {"preset": "private_chat",
                    "power_level_content_override": {"events": {CALL_MEMBER: 0}}, **extra}
        return self.call("POST", "/_matrix/client/v3/createRoom", document)["room_id"]

    def invite(self, room_id: str, user_id: str) -> None:
        self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/invite", {"user_id": user_id})

    def join(self, room_id: str) -> None:
        self.call("POST", f"/_matrix/client/v3/join/{quote(room_id)}", {})

    def leave(self, room_id: str) -> None:
        self.call("POST", f"/_matrix/client/v3/rooms/{quote(room_id)}/leave", {})

    def state_path(self, room_id: str, event_type: str, state_key: str) -> str:
        return f"/_matrix/client/v3/rooms/{quote(room_id)}/state/{quote(event_type)}/{quote(state_key, safe='')}"

    def set_state(self, room_id: str, event_type: str, state_key: str, content: dict) -> str:
        return self.call("PUT", self.state_path(room_id, event_type, state_key), content)["event_id"]

    def schedule_state(self, room_id: str, event_type: str, state_key: str, content: dict, delay_ms: int) -> str:
        """An MSC4140 delayed state event; returns its delay_id."""
        return self.call("PUT", self.state_path(room_id, event_type, state_key), content,
                         query={"org.matrix.msc4140.delay": str(delay_ms)})["delay_id"]

    def state(self, room_id: str, event_type: str, state_key: str) -> dict | None:
        response = self.request("GET", self.state_path(room_id, event_type, state_key))
        if response.status == 404:
            return None
        assert response.status == 200, (response.status, response.body[:500])
        return response.json()

    def delayed_event(self, delay_id: str) -> dict | None:
        """The pending delayed event as its owner sees it (`delay_ms`, `delayed_since_ts`), or None."""
        response = self.request("GET", f"{DELAYED_EVENTS}/{quote(delay_id, safe='')}")
        if response.status == 404:
            return None
        assert response.status == 200, (response.status, response.body[:500])
        return response.json()

    def call_member_key(self, device_id: str | None = None) -> str:
        """The state key MatrixRTC uses for one device's membership in the room call."""
        return f"_{self.user_id}_{device_id or self.device_id}_m.call"


class Synapse:
    """One Synapse main process. `registrations` are app-service registration files.

    With `tls` (a certificate and key), a second listener serves federation over HTTPS, and the
    server name is that listener's 127.0.0.1:port so that other homeservers reach it directly.
    """

    def __init__(self, directory: Path, *, registrations: list[Path] = (), tls: tuple[Path, Path] | None = None,
                 name: str = "synapse", log_level: str = "INFO", transports: list[dict] | None = None):
        self.name = name
        self.directory = directory / name
        self.directory.mkdir()
        self.client_port = free_port()
        self.federation_port = free_port() if tls else None
        # Without federation the server name is never dialled; a port keeps it distinct.
        self.server_name = f"127.0.0.1:{self.federation_port or self.client_port}"
        self.shared_secret = secrets.token_urlsafe(24)
        self.registrations = list(registrations)
        self.tls = tls
        self.log_level = log_level
        self.transports = transports
        self.process: Process | None = None
        self._users = 0

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "homeserver.log"

    def config(self) -> dict:
        listeners = [{"port": self.client_port, "bind_addresses": ["127.0.0.1"], "type": "http", "tls": False,
                      "x_forwarded": False, "resources": [{"names": ["client"], "compress": False}]}]
        document = {
            "server_name": self.server_name,
            "pid_file": str(self.directory / "homeserver.pid"),
            "listeners": listeners,
            "database": {"name": "sqlite3", "args": {"database": str(self.directory / "homeserver.db")}},
            "log_config": str(self.directory / "log.yaml"),
            "media_store_path": str(self.directory / "media"),
            "signing_key_path": str(self.directory / "signing.key"),
            "report_stats": False,
            "enable_metrics": False,
            "registration_shared_secret": self.shared_secret,
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "app_service_config_files": [str(path) for path in self.registrations],
            # AS-MODE-NOTES §5.3: proxying and fed_proxy, is_joined, delayed events.
            "experimental_features": {
                "msc4140_max_delayed_events_per_user": 1000,
                "msc4502_enabled": True,
                "msc4512_enabled": True,
                "msc4143_enabled": True,
            },
            "max_event_delay_duration": "24h",
            "rc_message": GENEROUS,
            "rc_registration": GENEROUS,
            "rc_room_creation": GENEROUS,
            "rc_delayed_event_mgmt": GENEROUS,
            "rc_invites": {"per_room": GENEROUS, "per_user": GENEROUS, "per_issuer": GENEROUS},
            "rc_joins": {"local": GENEROUS, "remote": GENEROUS},
            "rc_joins_per_room": GENEROUS,
            "rc_login": {"address": GENEROUS, "account": GENEROUS, "failed_attempts": GENEROUS},
            "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1,
                              "reject_limit": 1000, "concurrent": 100},
        }
        if self.transports is not None:
            document["matrix_rtc"] = {"transports": self.transports}
        if self.tls:
            certificate, key = self.tls
            listeners.append({"port": self.federation_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                              "tls": True, "resources": [{"names": ["federation"], "compress": False}]})
            document.update({
                "tls_certificate_path": str(certificate),
                "tls_private_key_path": str(key),
                # Both ends are throw-away loopback servers with self-signed certificates.
                "federation_verify_certificates": False,
                # IP-literal server names are checked against this list alone (no allow list), and
                # the default blocks loopback.
                "federation_ip_range_blacklist": [],
            })
        return document

    def start(self) -> "Synapse":
        # JSON is YAML; Synapse reads both files with its YAML loader.
        (self.directory / "homeserver.yaml").write_text(json.dumps(self.config(), indent=2))
        (self.directory / "log.yaml").write_text(json.dumps({
            "version": 1,
            "formatters": {"plain": {"format": "%(asctime)s %(name)s %(levelname)s %(request)s %(message)s"}},
            "filters": {"context": {"()": "synapse.logging.context.LoggingContextFilter", "request": ""}},
            "handlers": {"file": {"class": "logging.FileHandler", "filename": str(self.log_path),
                                  "formatter": "plain", "filters": ["context"]}},
            "root": {"level": self.log_level, "handlers": ["file"]},
            "disable_existing_loggers": False,
        }))
        # An ed25519 signing key is any 32 random bytes; writing it saves a Synapse start (--generate-keys).
        seed = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        (self.directory / "signing.key").write_text(f"ed25519 a_e2e {seed}\n")
        env = clean_environment(HOME=str(self.directory), PYTHONDONTWRITEBYTECODE="1")
        # In its own directory: `python -m` puts the working directory first on the module path, and
        # this harness (e2e/synapse.py) would shadow the synapse package.
        self.process = Process(self.name, [str(PYTHON), "-m", "synapse.app.homeserver",
                                           "-c", str(self.directory / "homeserver.yaml")], env, self.directory,
                               cwd=self.directory)
        try:
            wait_until(lambda: not self.process.running() or self._healthy(), f"{self.name} answering /health",
                       timeout=START_TIMEOUT)
            self.process.require_running()
        except (TimeoutError, RuntimeError) as error:
            self.stop()
            raise RuntimeError(f"{error}\n{self.log_tail()}") from None
        return self

    def _healthy(self) -> bool:
        try:
            return http_client.request(self.client_url, "GET", "/health", timeout=2).status == 200
        except OSError:
            time.sleep(0.2)
            return False

    def stop(self) -> None:
        # SIGTERM: Synapse shuts its reactor down; SQLite needs no more.
        if self.process is not None:
            self.process.stop(signal.SIGTERM, timeout=30)

    def log_tail(self, characters: int = 6000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return (text + (self.process.stderr() if self.process else ""))[-characters:]

    def request(self, method: str, path: str, document=None, *, query: dict | None = None,
                token: str | None = None, headers: dict | None = None) -> http_client.Response:
        if query:
            path += ("&" if "?" in path else "?") + urlencode(query)
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        body = None
        if document is not None:
            body = document if isinstance(document, bytes) else http_client.json_bytes(document)
            headers.setdefault("Content-Type", "application/json")
        return http_client.request(self.client_url, method, path, body, headers=headers)

    def register(self, localpart: str | None = None) -> User:
        """A new user through shared-secret registration (`/_synapse/admin/v1/register`)."""
        self._users += 1
        localpart = localpart or f"user{self._users}-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(12)
        nonce = self.request("GET", "/_synapse/admin/v1/register").json()["nonce"]
        mac = hmac.new(self.shared_secret.encode(), b"\x00".join(
            [nonce.encode(), localpart.encode(), password.encode(), b"notadmin"]), hashlib.sha1).hexdigest()
        response = self.request("POST", "/_synapse/admin/v1/register", {
            "nonce": nonce, "username": localpart, "password": password, "admin": False, "mac": mac})
        assert response.status == 200, (response.status, response.body[:500])
        answer = response.json()
        return User(self, answer["user_id"], answer["access_token"], answer["device_id"])
