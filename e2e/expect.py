"""Assertions for the response rules of contract §3.2."""

import json

from http_client import Response

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Accept, Content-Type, Content-Length, Accept-Encoding, X-CSRF-Token",
}

UNAUTHORIZED = "The request could not be authorised."
NOT_JSON = "Error reading request"
ROOM_CREATION_FAILED = "Unable to create room on SFU"
DELEGATION_RESTRICTED = "Delegation of delayed events is only supported for full access users"


def json_endpoint_headers(response: Response) -> None:
    """Content type and CORS headers that every response of a JSON endpoint carries."""
    assert response.headers.get("Content-Type") == "application/json", response.headers
    for name, value in CORS_HEADERS.items():
        assert response.headers.get(name) == value, f"{name}: {response.headers.get(name)!r}"


def matrix_error(response: Response, status: int, errcode: str, error: str, *, cors: bool = True) -> None:
    """Status and the exact error body: {"errcode":…,"error":…} and one LF, members in this order."""
    expected = json.dumps({"errcode": errcode, "error": error}, separators=(",", ":")).encode() + b"\n"
    assert (response.status, response.body) == (status, expected)
    if cors:
        json_endpoint_headers(response)
    else:
        assert response.headers.get("Content-Type") == "application/json", response.headers
