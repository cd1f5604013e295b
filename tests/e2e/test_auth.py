"""Bearer-key authentication as a client sees it."""

import httpx
import openai
import pytest

from helpers import CLIENT_KEY, UPSTREAM_KEY, error_object, text

USER = [{"role": "user", "content": "hello with a key"}]


def test_the_right_key_works(steward_auth, llm):
    llm.script(text("Authenticated hello."))
    client = steward_auth.client(api_key=CLIENT_KEY)
    assert "architect" in [m.id for m in client.models.list()]
    completion = client.chat.completions.create(model="architect", messages=USER)
    assert completion.choices[0].message.content == "Authenticated hello."
    # The client's key is Steward's business; upstream gets the provider key.
    [upstream] = llm.chat_requests()
    assert upstream["headers"].get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert CLIENT_KEY not in str(upstream)


@pytest.mark.parametrize("key", ["sk-wrong-key", CLIENT_KEY + "x", CLIENT_KEY.upper()])
def test_a_wrong_key_is_401(steward_auth, llm, key):
    llm.set_default(text("should not be asked"))
    client = steward_auth.client(api_key=key)
    with pytest.raises(openai.AuthenticationError) as info:
        client.chat.completions.create(model="architect", messages=USER)
    e = info.value
    assert e.status_code == 401
    assert e.body["type"] == "authentication_error", e.body
    assert e.body["code"] == "invalid_api_key", e.body
    assert key not in e.body["message"], e.body
    error_object(e.response.json())
    # A new client: after a 401 sent before the body was read Steward drops
    # the connection without saying so (see test_keepalive.py).
    with pytest.raises(openai.AuthenticationError):
        steward_auth.client(api_key=key).models.list()
    assert llm.chat_requests() == []


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/v1/models"),
        ("GET", "/v1/models/architect"),
        ("POST", "/v1/chat/completions"),
        ("GET", "/api/conversations"),
        ("GET", "/metrics"),
        ("GET", "/v1/nothing-here"),
    ],
)
def test_no_key_is_401_with_an_error_object(steward_auth, llm, method, path):
    llm.set_default(text("should not be asked"))
    body = {"model": "architect", "messages": USER} if method == "POST" else None
    with httpx.Client(base_url=steward_auth.url, timeout=10, trust_env=False) as http:
        r = http.request(method, path, json=body)
    assert "authorization" not in r.request.headers
    assert r.status_code == 401, r.text
    error = error_object(r.json())
    assert error["type"] == "authentication_error", error
    assert error["code"] == "invalid_api_key", error
    assert llm.chat_requests() == []


def test_malformed_authorization_header_is_401(steward_auth):
    for value in (f"Basic {CLIENT_KEY}", CLIENT_KEY, "Bearer", f"Token {CLIENT_KEY}"):
        r = steward_auth.http.get("/v1/models", headers={"authorization": value})
        assert r.status_code == 401, (value, r.text)
        error_object(r.json())


def test_health_needs_no_key(steward_auth):
    with httpx.Client(base_url=steward_auth.url, timeout=10, trust_env=False) as http:
        r = http.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "ok", r.json()


def test_the_key_works_with_plain_http_too(steward_auth):
    r = steward_auth.http.get("/v1/models", headers={"authorization": f"Bearer {CLIENT_KEY}"})
    assert r.status_code == 200, r.text
    assert "architect" in [m["id"] for m in r.json()["data"]]
