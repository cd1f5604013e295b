"""Secrets stay secret, and Steward refuses unsafe or broken configurations."""

import subprocess
import tempfile
from pathlib import Path

import openai
import pytest

from helpers import UPSTREAM_KEY, error_object
from processes import clean_env, free_port, steward_binary


def test_upstream_key_echoed_back_is_redacted(steward, llm):
    llm.script(
        {
            "type": "error",
            "status": 401,
            "body": {
                "error": {
                    "message": f"Incorrect API key provided: {UPSTREAM_KEY}",
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_api_key",
                }
            },
        }
    )
    with pytest.raises(openai.APIStatusError) as info:
        steward.client().chat.completions.create(model="architect", messages=[{"role": "user", "content": "hi"}])
    e = info.value
    assert e.status_code == 502, e
    error_object(e.response.json())
    assert UPSTREAM_KEY not in e.response.text, e.response.text
    assert UPSTREAM_KEY not in steward.proc.stderr(), "the upstream key appears in Steward's log"


def test_client_keys_are_not_logged(steward_auth, llm):
    secret = "sk-e2e-key-that-must-not-be-logged"
    with pytest.raises(openai.AuthenticationError):
        steward_auth.client(api_key=secret).models.list()
    assert secret not in steward_auth.proc.stderr()
    assert "sk-e2e-key" not in steward_auth.proc.stderr()


def _serve_expecting_refusal(env_extra, *extra_args):
    with tempfile.TemporaryDirectory() as home:
        argv = [str(steward_binary()), "serve", "--port", str(free_port()), "--data-dir", str(Path(home) / "data")]
        try:
            done = subprocess.run(
                argv + list(extra_args),
                cwd=home,
                env=clean_env(env_extra),
                capture_output=True,
                text=True,
                timeout=15,
            )
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"steward kept running although its configuration is invalid: {e.stderr!r}")
    assert done.returncode != 0, done
    return done.stdout + done.stderr


def test_invalid_key_digest_stops_the_start(steward):
    out = _serve_expecting_refusal({"STEWARD_API_KEYS": "not-a-digest"})
    assert "STEWARD_API_KEYS" in out, out


def test_public_address_without_keys_is_refused(steward):
    out = _serve_expecting_refusal({"STEWARD_HOST": "0.0.0.0"})
    assert "STEWARD_API_KEYS" in out or "--insecure-no-auth" in out, out
