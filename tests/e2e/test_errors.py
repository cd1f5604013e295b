"""Errors as the official SDK (and a plain HTTP client) sees them."""

import json

import httpx
import openai
import pytest

from helpers import SMALL_BODY_LIMIT, error_object, text, upstream_error

USER = [{"role": "user", "content": "hello"}]


def _post_raw(steward, content, headers=None):
    # A connection of its own: Steward may answer (413) before reading the
    # body and then drop the connection (see test_keepalive.py).
    with steward.fresh_http() as http:
        return http.post(
            "/v1/chat/completions",
            content=content,
            headers={"content-type": "application/json", **(headers or {})},
        )


def test_unknown_model_is_model_not_found(steward, llm):
    llm.set_default(text("should not be asked"))
    client = steward.client()
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="no-such-agent", messages=USER)
    e = info.value
    assert e.status_code == 404
    assert e.code == "model_not_found"
    assert e.body["code"] == "model_not_found", e.body
    assert e.body["type"] == "invalid_request_error", e.body
    assert e.body["param"] == "model", e.body
    assert "no-such-agent" in e.body["message"] and "architect" in e.body["message"], e.body
    error_object(e.response.json())
    assert llm.chat_requests() == []


def test_unknown_model_when_streaming_is_model_not_found(steward, llm):
    llm.set_default(text("should not be asked"))
    client = steward.client()
    with pytest.raises(openai.NotFoundError) as info:
        stream = client.chat.completions.create(model="no-such-agent", messages=USER, stream=True)
        list(stream)
    assert info.value.code == "model_not_found"
    assert llm.chat_requests() == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "architect", "messages": [',
        b"not json at all",
        b'{"model": "architect", "messages": [{"role": "user", "content": "hi"}]} trailing',
    ],
    ids=["truncated", "not-json", "trailing-garbage"],
)
def test_malformed_json_is_400(steward, llm, body):
    llm.set_default(text("should not be asked"))
    r = _post_raw(steward, body)
    assert r.status_code == 400, r.text
    assert r.headers.get("content-type", "").startswith("application/json"), r.headers
    error = error_object(r.json())
    assert error["type"] == "invalid_request_error", error
    assert error["code"] == "invalid_request", error
    assert llm.chat_requests() == []


def test_empty_body_is_400(steward):
    r = _post_raw(steward, b"")
    assert r.status_code == 400, r.text
    error_object(r.json())


@pytest.mark.parametrize(
    "extra_body",
    [
        {"messages": "hello"},
        {"messages": [{"role": "user", "content": 42}]},
        {"messages": [{"role": "wizard", "content": "hi"}]},
        {"messages": []},
        {"model": 7},
        {"stream": "yes"},
    ],
    ids=["messages-string", "content-number", "unknown-role", "messages-empty", "model-number", "stream-string"],
)
def test_mistyped_body_is_bad_request(steward, llm, extra_body):
    llm.set_default(text("should not be asked"))
    client = steward.client()
    with pytest.raises(openai.BadRequestError) as info:
        # extra_body replaces the named fields in the JSON the SDK sends.
        client.chat.completions.create(model="architect", messages=USER, extra_body=extra_body)
    e = info.value
    assert e.status_code == 400
    assert e.body["type"] == "invalid_request_error", e.body
    error_object(e.response.json())
    assert llm.chat_requests() == []


def test_missing_fields_are_bad_request(steward, llm):
    llm.set_default(text("should not be asked"))
    for body in ({"messages": USER}, {"model": "architect"}, [], "x"):
        r = _post_raw(steward, json.dumps(body).encode())
        assert r.status_code == 400, (body, r.text)
        error_object(r.json())
    assert llm.chat_requests() == []


def test_last_message_not_from_user_is_bad_request(steward, llm):
    llm.set_default(text("should not be asked"))
    client = steward.client()
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model="architect",
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}],
        )
    assert info.value.body["param"] == "messages", info.value.body
    assert llm.chat_requests() == []


def test_oversized_body_is_413(steward_small_body, llm):
    llm.set_default(text("small enough"))
    client = steward_small_body.client()
    # Under the limit: served.
    ok = client.chat.completions.create(model="architect", messages=USER)
    assert ok.choices[0].message.content == "small enough"

    big = [{"role": "user", "content": "x" * (SMALL_BODY_LIMIT * 2)}]
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="architect", messages=big)
    e = info.value
    assert e.status_code == 413, e
    assert e.body["code"] == "payload_too_large", e.body
    assert str(SMALL_BODY_LIMIT) in e.body["message"], e.body
    error_object(e.response.json())
    assert len(llm.chat_requests()) == 1


def test_oversized_chunked_body_is_413(steward_small_body, llm):
    """Without a Content-Length the limit must still hold while reading."""
    llm.set_default(text("should not be asked"))
    payload = json.dumps({"model": "architect", "messages": [{"role": "user", "content": "y" * (SMALL_BODY_LIMIT * 4)}]})

    def chunks():
        data = payload.encode()
        for i in range(0, len(data), 1024):
            yield data[i : i + 1024]

    with steward_small_body.fresh_http() as http:
        r = http.post("/v1/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert r.status_code == 413, r.text
    assert error_object(r.json())["code"] == "payload_too_large"
    assert llm.chat_requests() == []


def test_body_limit_boundary(steward_small_body, llm):
    """A body of exactly the limit is read; one byte more is refused."""
    llm.set_default(text("at the limit"))
    base = json.dumps({"model": "architect", "messages": USER}).encode()
    exact = base[:-1] + b" " * (SMALL_BODY_LIMIT - len(base)) + b"}"
    assert len(exact) == SMALL_BODY_LIMIT
    r = _post_raw(steward_small_body, exact)
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "at the limit"
    over = exact[:-1] + b" }"
    r = _post_raw(steward_small_body, over)
    assert r.status_code == 413, r.text
    assert error_object(r.json())["code"] == "payload_too_large"


def test_oversized_body_on_native_routes(steward_small_body):
    with steward_small_body.fresh_http() as http:
        r = http.post("/api/conversations", json={"title": "t" * (SMALL_BODY_LIMIT * 2)})
    assert r.status_code == 413, r.text
    error_object(r.json())


def test_oversized_body_on_the_default_limit(steward, llm):
    """The default limit is 1 MiB."""
    llm.set_default(text("should not be asked"))
    big = json.dumps({"model": "architect", "messages": [{"role": "user", "content": "z" * (1024 * 1024 + 10)}]})
    r = _post_raw(steward, big.encode())
    assert r.status_code == 413, r.text[:500]
    assert error_object(r.json())["code"] == "payload_too_large"


def test_upstream_500_is_502_naming_the_provider(steward, llm):
    llm.script(upstream_error(500, "boom"))
    client = steward.client()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="architect", messages=USER)
    e = info.value
    assert e.status_code == 502, e
    assert isinstance(e, openai.InternalServerError)
    assert e.body["code"] == "llm_failed", e.body
    assert e.body["type"] == "upstream_error", e.body
    assert "openai" in e.body["message"], e.body
    assert "openai" in e.message, e.message
    assert "boom" in e.body["message"], e.body
    error_object(e.response.json())
    # The upstream key never leaks into an error.
    assert "sk-upstream-test" not in e.response.text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 503])
def test_other_upstream_failures_are_502(steward, llm, status):
    """Whatever the provider says, it is a gateway failure for the client:
    an upstream 401 must not look like the client's key was wrong."""
    llm.script(upstream_error(status, f"upstream said {status}"))
    client = steward.client()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="architect", messages=USER)
    e = info.value
    assert e.status_code == 502, e
    assert e.body["code"] == "llm_failed", e.body
    assert "openai" in e.body["message"], e.body
    error_object(e.response.json())


def test_upstream_500_before_the_stream_starts_is_an_http_502(steward, llm):
    # Like OpenAI: an error before the first output comes back as an HTTP
    # status (so clients can see it and retry), not inside a 200 stream.
    llm.script(upstream_error(500, "stream boom"))
    client = steward.client()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="architect", messages=USER, stream=True)
    e = info.value
    assert e.status_code == 502, e
    assert "openai" in e.message, e.message
    assert isinstance(e.body, dict) and e.body.get("code") == "llm_failed", e.body


def test_upstream_429_while_streaming_is_an_http_error_the_sdk_can_retry(steward, llm):
    llm.script(upstream_error(429, "slow down"))
    with pytest.raises(openai.APIStatusError) as info:
        steward.client().chat.completions.create(model="architect", messages=USER, stream=True)
    assert info.value.status_code == 502
    assert "rate" in info.value.message, info.value.message


def test_upstream_stream_cut_raises_in_the_sdk(steward, llm):
    llm.script({"type": "cut_stream", "content": "abc def", "after_chunks": 2})
    stream = steward.client().chat.completions.create(model="architect", messages=USER, stream=True)
    content = ""
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            if chunk.choices:
                content += chunk.choices[0].delta.content or ""
                assert chunk.choices[0].finish_reason is None, chunk
    assert content == "abc def"
    assert "openai" in info.value.message, info.value.message
    assert info.value.body.get("code") == "llm_failed", info.value.body


def test_upstream_stream_cut_non_streaming_is_502(steward, llm):
    llm.script({"type": "cut_stream", "content": "abc def", "after_chunks": 2})
    with pytest.raises(openai.APIStatusError) as info:
        steward.client().chat.completions.create(model="architect", messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["code"] == "llm_failed", info.value.body


def test_upstream_garbage_is_502(steward, llm):
    llm.script({"type": "garbage", "body": "<html>not an API</html>"})
    client = steward.client()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="architect", messages=USER)
    assert info.value.status_code == 502, info.value
    assert "openai" in info.value.body["message"], info.value.body


def test_unknown_route_is_404_error_object(steward):
    r = steward.http.get("/v1/nothing-here")
    assert r.status_code == 404
    assert error_object(r.json())["code"] == "not_found"


def test_server_keeps_serving_after_errors(steward, llm):
    client = steward.client()
    llm.script(upstream_error(500), upstream_error(500), {"type": "garbage", "body": "<html>"})
    assert _post_raw(steward, b"{").status_code == 400
    assert _post_raw(steward, b'{"model": "nope", "messages": [{"role":"user","content":"x"}]}').status_code == 404
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="architect", messages=USER)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(model="architect", messages=USER, stream=True))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="architect", messages=USER)
    # A client that hangs up mid-request does not hurt either.
    llm.script({"type": "delay", "ms": 1000, "then": text("late")})
    with pytest.raises(httpx.TimeoutException):
        steward.http.post(
            "/v1/chat/completions", json={"model": "architect", "messages": USER}, timeout=httpx.Timeout(0.2)
        )

    llm.script(text("Still here."))
    completion = client.chat.completions.create(model="architect", messages=USER)
    assert completion.choices[0].message.content == "Still here."
    assert steward.proc.alive()
    assert steward.http.get("/health").status_code == 200


@pytest.mark.parametrize(
    "method,path",
    [("GET", "/v1/chat/completions"), ("DELETE", "/v1/models"), ("PUT", "/api/conversations")],
)
def test_wrong_method_is_405_with_an_error_object(steward, method, path):
    """README: every error has OpenAI's shape — a wrong method too."""
    r = steward.http.request(method, path)
    assert r.status_code == 405, r.text
    assert r.headers.get("content-type", "").startswith("application/json"), (
        f"{method} {path}: 405 without a JSON error body "
        f"(content-type {r.headers.get('content-type')!r}, body {r.text!r})"
    )
    error_object(r.json())
