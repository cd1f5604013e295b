"""Keep-alive honesty: a response that ends the connection must say so.

Clients (httpx, the openai SDK, Open WebUI's aiohttp) pool connections and
send a request's head and body in separate writes. When Steward answers
before reading the body (a wrong key, a body over the limit) and then closes
the connection, a response without `Connection: close` makes the client
reuse a dead connection: its next request fails with "server disconnected".
"""

import json

from helpers import SMALL_BODY_LIMIT, reuse_after_response

BODY = json.dumps({"model": "architect", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _head(path: str, length: int, extra: str = "") -> str:
    return (
        f"POST {path} HTTP/1.1\r\nHost: steward\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\n{extra}\r\n"
    )


def _assert_honest(status, headers, second, expected_status):
    assert status == expected_status, (status, headers)
    if headers.get("connection", "").lower() == "close":
        return  # the client was told not to reuse the connection
    assert isinstance(second, bytes) and second.startswith(b"HTTP/1.1 200"), (
        f"the {status} response kept the connection open (no 'Connection: close': {headers}) "
        f"but the next request on it got {second!r}"
    )


def test_control_a_fully_read_request_keeps_the_connection(steward):
    """A 400 sent after reading the whole body: the connection stays usable."""
    bad = b"{" + b" " * 20
    status, headers, second = reuse_after_response(
        steward.url, _head("/v1/chat/completions", len(bad)), bad, body_with_head=True
    )
    _assert_honest(status, headers, second, 400)
    assert isinstance(second, bytes) and second.startswith(b"HTTP/1.1 200"), second


def test_wrong_key_response_is_honest_about_the_connection(steward_auth):
    status, headers, second = reuse_after_response(
        steward_auth.url,
        _head("/v1/chat/completions", len(BODY), "Authorization: Bearer sk-wrong\r\n"),
        BODY,
    )
    _assert_honest(status, headers, second, 401)


def test_too_large_response_is_honest_about_the_connection(steward_small_body):
    big = b" " * (SMALL_BODY_LIMIT + 1)
    status, headers, second = reuse_after_response(
        steward_small_body.url, _head("/v1/chat/completions", len(big)), big
    )
    _assert_honest(status, headers, second, 413)
