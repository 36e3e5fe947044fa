"""lkjwt-fcgi as an application service of a real Synapse (AS-MODE.md): the homeserver, the service
under spawn-fcgi, nginx with the shipped application-service snippet where the registration's
`proxy_url` points, and nginx with the ordinary snippet for the SFU's webhooks.

The registration is the one `lkjwt-fcgi registration` prints, loaded by Synapse and read by the
service (LIVEKIT_AS_REGISTRATION_FILE).
"""

import functools
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import http_client
import oracle
import service as lkjwt
import synapse
from fakes.participants import ParticipantSFU
from synapse import Synapse
from webhooks import WebhookSender
from webservers import NGINX_APPSERVICE_LOCATIONS, Nginx

CLIENT_PREFIXES = {"unstable": "/_matrix/client/unstable/io.element.msc4195", "v1": "/_matrix/client/v1"}
FEDERATION_PREFIXES = {"unstable": "/_matrix/federation/unstable/io.element.msc4195",
                       "v1": "/_matrix/federation/v1"}


def print_registration(server_name: str, url: str) -> str:
    """`lkjwt-fcgi registration --server-name … --url …`; its standard output."""
    printed = lkjwt.run_once(lkjwt.clean_environment(), "registration", "--server-name", server_name, "--url", url)
    assert printed.returncode == 0, f"lkjwt-fcgi registration: {printed.returncode}\n{printed.stderr}"
    return printed.stdout


def read_registration(path: Path) -> dict:
    """The registration as Synapse reads it (YAML, with the PyYAML of Synapse's venv)."""
    loaded = subprocess.run([str(synapse.PYTHON), "-c",
                             "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
                             str(path)], capture_output=True, text=True, check=True)
    return json.loads(loaded.stdout)


@dataclass
class AppServiceStack:
    synapse: Synapse
    sfu: ParticipantSFU
    service: lkjwt.Service
    appservice_nginx: Nginx  # what Synapse's proxy_url points at
    public_nginx: Nginx  # the ordinary mount: the SFU's webhooks
    registration_path: Path
    registration: dict
    running: list = field(default_factory=list)

    @property
    def hs_token(self) -> str:
        return self.registration["hs_token"]

    @property
    def as_token(self) -> str:
        return self.registration["as_token"]

    def webhooks(self) -> WebhookSender:
        return WebhookSender(self.public_nginx.base_url, lkjwt.API_KEY, lkjwt.API_SECRET)

    def direct(self, method: str, path: str, document=None, *, headers: dict | None = None) -> http_client.Response:
        """A request to the service's application-service mount, as Synapse would send it (or not)."""
        body = None if document is None else http_client.json_bytes(document)
        headers = {"Content-Type": "application/json", **(headers or {})}
        return http_client.request(self.appservice_nginx.base_url, method, path, body, headers=headers)

    def claims(self, jwt: str) -> dict:
        return oracle.verified_claims(jwt, lkjwt.API_SECRET)

    def stop(self) -> None:
        for process in reversed(self.running):
            process.stop()

    def service_log(self) -> str:
        return self.service.process.stderr()


def start_stack(directory: Path, *, name: str = "as", tls: tuple[Path, Path] | None = None,
                log_level: str = "debug", synapse_log_level: str = "INFO", sfu_class: type = ParticipantSFU,
                **service_overrides) -> AppServiceStack:
    """Everything of one homeserver and its service, started; stop with `.stop()`."""
    directory = directory / name
    directory.mkdir()
    running = []
    try:
        sfu = sfu_class(lkjwt.API_KEY, lkjwt.API_SECRET).start()
        running.append(sfu)
        homeserver = Synapse(directory, tls=tls, name=f"synapse-{name}", log_level=synapse_log_level,
                             transports=[{"type": "livekit", "url": sfu.url}])
        socket_path = directory / "lkjwt-fcgi.sock"  # where start_under_spawn_fcgi binds it
        appservice_nginx = Nginx(directory, f"unix:{socket_path}", name=f"nginx-{name}-appservice",
                                 locations=NGINX_APPSERVICE_LOCATIONS)
        running.append(appservice_nginx)
        public_nginx = Nginx(directory, f"unix:{socket_path}", name=f"nginx-{name}-public")
        running.append(public_nginx)
        registration_path = directory / "lkjwt-registration.yaml"
        registration_path.write_text(print_registration(homeserver.server_name, appservice_nginx.base_url))
        # Full access for this homeserver's users on the standalone endpoints (which the AS endpoints
        # do not consult), its federation certificate trusted for their OpenID verification.
        env = lkjwt.service_environment(
            livekit_url=sfu.url, full_access=homeserver.server_name, ca_file=tls[0] if tls else None,
            LIVEKIT_LOG_LEVEL=log_level,
            LIVEKIT_AS_REGISTRATION_FILE=str(registration_path),
            LIVEKIT_HS_SERVER_NAME=homeserver.server_name,
            LIVEKIT_CS_API_URL_OVERRIDES=f"{homeserver.server_name}={homeserver.client_url}",
            LIVEKIT_SANITY_CHECK_INTERVAL_SECONDS="1",
            **service_overrides)
        service = lkjwt.start_under_spawn_fcgi(env, directory)
        running.append(service)
        homeserver.registrations = [registration_path]
        homeserver.start()
        running.append(homeserver)
        return AppServiceStack(homeserver, sfu, service, appservice_nginx, public_nginx, registration_path,
                               read_registration(registration_path), running)
    except BaseException:
        for process in reversed(running):
            process.stop()
        raise


@functools.cache
def as_mode_missing_reason() -> str | None:
    """Why the application-service tests cannot run with this binary and machine, or None."""
    reason = synapse.missing_reason()
    if reason:
        return reason
    printed = lkjwt.run_once(lkjwt.clean_environment(), "registration", "--server-name", "probe.invalid",
                             "--url", "http://127.0.0.1:1")
    if printed.returncode != 0:
        return f"{lkjwt.BINARY} has no application-service mode (`registration` failed: {printed.stderr.strip()[:200]})"
    # One CGI request for the ping without the hs_token: 401 once the endpoints exist, 404 before.
    env = lkjwt.service_environment(
        livekit_url="ws://127.0.0.1:1", full_access="probe.invalid", ca_file=None, LIVEKIT_LOG_LEVEL="error",
        LIVEKIT_AS_TOKEN="probe-as-token", LIVEKIT_HS_TOKEN="probe-hs-token", LIVEKIT_HS_SERVER_NAME="probe.invalid",
        GATEWAY_INTERFACE="CGI/1.1", REQUEST_METHOD="POST", SCRIPT_NAME="/_matrix/app/v1/ping",
        CONTENT_LENGTH="0", REMOTE_ADDR="127.0.0.1", SERVER_PROTOCOL="HTTP/1.1")
    answered = lkjwt.run_once(env)
    if "Status: 404" in answered.stdout or answered.returncode != 0:
        return f"{lkjwt.BINARY} does not serve the application-service endpoints yet (ping: {answered.stdout[:80]!r})"
    return None
