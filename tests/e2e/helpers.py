"""Constants and assertions shared by the end-to-end tests."""

from __future__ import annotations

import hashlib
import socket
import time
from typing import Any

UPSTREAM_KEY = "sk-upstream-test"
CLIENT_KEY = "sk-e2e-key"
SMALL_BODY_LIMIT = 4096
CONVERSATION_HEADER = "x-steward-conversation-id"
ERROR_KEYS = {"message", "type", "param", "code"}


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def text(content: str) -> dict[str, Any]:
    return {"type": "text", "content": content}


def tool_call(name: str, arguments: str = "{}", call_id: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {"name": name, "arguments": arguments}
    if call_id is not None:
        call["id"] = call_id
    return {"type": "tool_calls", "calls": [call]}


def upstream_error(status: int = 500, message: str = "boom") -> dict[str, Any]:
    return {
        "type": "error",
        "status": status,
        "body": {"error": {"message": message, "type": "server_error", "param": None, "code": None}},
    }


def error_object(body: Any) -> dict[str, Any]:
    """Checks that `body` is OpenAI's error shape and returns its `error`."""
    assert isinstance(body, dict) and set(body) == {"error"}, f"not an OpenAI error body: {body!r}"
    error = body["error"]
    assert isinstance(error, dict), body
    assert set(error) == ERROR_KEYS, f"error keys {sorted(error)} != {sorted(ERROR_KEYS)}: {body!r}"
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    assert isinstance(error["code"], str) and error["code"], body
    assert error["param"] is None or isinstance(error["param"], str), body
    return error


def scripted_tokens(chars: int) -> int:
    """How the scripted model counts tokens: a quarter of the characters, at least 1."""
    return max(chars // 4, 1)


def scripted_prompt_tokens(upstream_body: dict[str, Any]) -> int:
    """The prompt tokens the scripted model reports for a recorded request."""
    chars = 0
    for m in upstream_body["messages"]:
        content = m.get("content")
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            chars += sum(len(p.get("text") or "") for p in content)
    return scripted_tokens(chars)


def read_http_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Reads one HTTP/1.1 response with a Content-Length from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response head: {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def reuse_after_response(
    url: str, head: str, body: bytes, body_with_head: bool = False
) -> tuple[int, dict[str, str], bytes | str]:
    """Sends `head` (a request head whose Content-Length is len(body)) on a
    fresh connection, reads the response, then sends `body` followed by
    `GET /health` on the same connection, the way a keep-alive client that
    writes head and body separately does (with `body_with_head` the body goes
    out with the head instead). Returns the first response's status and
    headers, and what came back for the second request: the raw bytes, or
    the name of the error when the connection was dropped."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head.encode() + (body if body_with_head else b""))
        status, headers, _ = read_http_response(sock)
        time.sleep(0.2)  # what a client does between requests takes time
        rest = b"" if body_with_head else body
        try:
            sock.sendall(rest + b"GET /health HTTP/1.1\r\nHost: steward\r\n\r\n")
            second = sock.recv(65536) or "EOF"
        except OSError as e:
            second = type(e).__name__
    return status, headers, second
