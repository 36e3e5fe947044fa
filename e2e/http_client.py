"""A small HTTP client with full control over method, body framing and headers (http.client)."""

import http.client
import json
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urlsplit


@dataclass
class Response:
    status: int
    headers: Message
    body: bytes

    def json(self):
        return json.loads(self.body)


def request(base_url: str, method: str, path: str, body: bytes | None = None, *,
            headers: dict[str, str] | None = None, chunked: bool = False, timeout: float = 30.0) -> Response:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=timeout)
    try:
        headers = dict(headers or {})
        if chunked:
            # Three chunks of whatever size, so that the web server really sees chunked framing.
            third = max(1, len((body or b"")) // 3)
            pieces = [body[i:i + third] for i in range(0, len(body or b""), third)]
            headers["Transfer-Encoding"] = "chunked"
            connection.request(method, path, body=iter(pieces), headers=headers, encode_chunked=True)
        else:
            connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read())
    finally:
        connection.close()


def json_bytes(document) -> bytes:
    return json.dumps(document).encode()
