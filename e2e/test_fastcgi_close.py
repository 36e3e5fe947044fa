"""How the service ends a FastCGI connection the web server does not keep (FASTCGI-NOTES.md, libfcgi
trap 5): libfcgi shuts its side down and reads until the web server closes too; once the request's
input was read to its end, nothing more can come and the service closes at once."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import fastcgi


def closed_at_once(upstream: str, method: str, path: str, body: bytes = b"",
                   content_length: str | None = None) -> tuple[int, bool]:
    """The answer's status, and whether the service had closed the connection fully (not only shut its
    side down while reading on) when the answer's end of stream arrived."""
    with fastcgi._connect(upstream, timeout=5) as connection:
        fastcgi.send_request(connection, path, method, body, content_length)
        status = fastcgi.status_of(fastcgi.read_response(connection))
        deadline = time.monotonic() + 5
        while connection.recv(4096):  # the end of stream: the service closed or shut down its side
            assert time.monotonic() < deadline, "the service sent more after FCGI_END_REQUEST"
        try:
            # A lingering service reads this and discards it; a closed socket refuses it.
            connection.send(b"\0" * 8)
        except (BrokenPipeError, ConnectionResetError):
            return status, True
        return status, False


@pytest.mark.parametrize("content_length", ["", "0"])
def test_a_request_read_to_its_end_closes_at_once(service, content_length):
    assert closed_at_once(service.upstream, "GET", "/healthz", content_length=content_length) == (200, True)


def test_a_body_of_declared_length_is_read_to_its_end_and_closes_at_once(service):
    status, closed = closed_at_once(service.upstream, "POST", "/get_token", b'{"room_id": 7}')
    assert status == 400
    assert closed


def test_answers_arrive_whole_while_many_connections_close(service):
    """Closing without the linger must never cut an answer short: 16 clients, 25 requests each."""
    def client(_) -> list[bytes]:
        answers = []
        for _ in range(25):
            with fastcgi._connect(service.upstream, timeout=5) as connection:
                fastcgi.send_request(connection, "/get_token", "POST", b'{"room_id": 7}')
                answers.append(fastcgi.read_response(connection))
        return answers

    with ThreadPoolExecutor(16) as pool:
        answers = [answer for each in pool.map(client, range(16)) for answer in each]
    assert len(answers) == 400
    assert all(fastcgi.status_of(answer) == 400 and answer.rstrip().endswith(b"}") for answer in answers)
