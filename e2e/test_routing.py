"""Routing and method handling through every web server and mount (contract §3.1, §3.2, §3.8)."""

import pytest

import expect
from conftest import PREFIX_FRONTENDS

JSON_ENDPOINTS = ["/get_token", "/sfu/get", "/delegate_delayed_leave"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_healthz_answers_200_with_an_empty_body(frontend, method):
    response = frontend.request(method, "/healthz")
    assert (response.status, response.body) == (200, b"")
    assert "Access-Control-Allow-Origin" not in response.headers


def test_healthz_rejects_post_with_405_and_no_body(frontend):
    response = frontend.request("POST", "/healthz", b"")
    assert (response.status, response.body) == (405, b"")


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
def test_preflight_answers_200_with_cors_headers(frontend, endpoint):
    response = frontend.request("OPTIONS", endpoint, headers={
        "Origin": "https://call.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    })
    assert (response.status, response.body) == (200, b"")
    expect.json_endpoint_headers(response)


@pytest.mark.parametrize("endpoint", JSON_ENDPOINTS)
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_on_json_endpoint_is_405_with_allow(frontend, endpoint, method):
    response = frontend.request(method, endpoint)
    expect.matrix_error(response, 405, "M_UNRECOGNIZED", "Method not allowed")
    assert response.headers.get("Allow") == "POST, OPTIONS"


def test_head_on_json_endpoint_is_405_without_body(frontend):
    response = frontend.request("HEAD", "/get_token")
    assert (response.status, response.body) == (405, b"")
    assert response.headers.get("Allow") == "POST, OPTIONS"
    expect.json_endpoint_headers(response)


@pytest.mark.parametrize("frontend", PREFIX_FRONTENDS, indirect=True)
@pytest.mark.parametrize("path", ["/unknown", "/get_token/", "/sfu", "/healthz/extra"])
def test_unknown_path_is_404_unrecognized(frontend, path):
    response = frontend.request("POST", path, b"{}")
    expect.matrix_error(response, 404, "M_UNRECOGNIZED", "Unrecognized request", cors=False)
