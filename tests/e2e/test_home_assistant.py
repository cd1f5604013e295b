"""Steward against a real Home Assistant (started by scripts/homeassistant.sh
with its `demo` integration): the catalog, a command through the approval
gate that changes Home Assistant's state, and clear errors for a bad token
or an unreachable address."""

from __future__ import annotations

import json
import os
import subprocess
import time

import httpx
import pytest

from helpers import UPSTREAM_KEY, text, tool_call
from processes import clean_env, free_port, start_steward, steward_binary

HA_URL = os.environ.get("STEWARD_TEST_HA_URL")
HA_TOKEN = os.environ.get("STEWARD_TEST_HA_TOKEN")

if not (HA_URL and HA_TOKEN):
    if os.environ.get("STEWARD_REQUIRE_HA") == "1":
        raise RuntimeError("STEWARD_REQUIRE_HA=1 but STEWARD_TEST_HA_URL / STEWARD_TEST_HA_TOKEN are not set")
    pytest.skip("no Home Assistant (run scripts/homeassistant.sh, or bash scripts/test.sh)", allow_module_level=True)


def ha(method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"Bearer {HA_TOKEN}"}
    return httpx.request(method, f"{HA_URL}{path}", headers=headers, timeout=30, trust_env=False, **kwargs)


@pytest.fixture(scope="module")
def steward_ha(workdir):
    server = start_steward("steward-ha", workdir, {"HA_URL": HA_URL, "HA_TOKEN": HA_TOKEN})
    yield server
    server.http.close()
    server.proc.stop()


def wait_for(what: str, check, seconds: float = 20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_catalog_mirrors_home_assistant(steward_ha):
    def lights():
        r = steward_ha.http.get("/api/entities", params={"domain": "light"})
        return [e["entity_id"] for e in r.json()["entities"]]

    ids = wait_for("the catalog sync", lights)
    assert "light.bed_light" in ids, ids
    logs = steward_ha.proc.logs(max_lines=400)
    assert "connected to Home Assistant" in logs, logs
    assert "demo home" not in logs, logs
    assert HA_TOKEN not in logs


def test_a_command_changes_home_assistant_only_after_approval(steward_ha):
    assert ha("POST", "/api/services/light/turn_off", json={"entity_id": "light.bed_light"}).status_code == 200
    wait_for("the light to be off", lambda: ha("GET", "/api/states/light.bed_light").json()["state"] == "off")

    r = steward_ha.http.post("/api/conversations", json={})
    conversation_id = r.json()["id"]
    r = steward_ha.http.post(f"/api/conversations/{conversation_id}/messages", json={"content": "turn on the bed light"})
    asked = r.json()["content"]
    assert "Reply 'approve' to proceed" in asked, asked
    assert "light.bed_light" in asked, asked
    time.sleep(0.5)
    assert ha("GET", "/api/states/light.bed_light").json()["state"] == "off", "nothing changes before approval"

    r = steward_ha.http.post(f"/api/conversations/{conversation_id}/messages", json={"content": "approve"})
    assert r.json()["content"].startswith("Done ("), r.json()
    assert ha("GET", "/api/states/light.bed_light").json()["state"] == "on"
    # The catalog follows Home Assistant's state_changed events.
    wait_for(
        "the catalog to see the change",
        lambda: steward_ha.http.get("/api/entities", params={"q": "light.bed_light"}).json()["entities"][0]["state"]
        == "on",
    )


NIGHT_LIGHT_YAML = """alias: Bed light at night
description: Turns the bed light on at 22:30
triggers:
  - trigger: time
    at: "22:30:00"
actions:
  - action: light.turn_on
    target:
      entity_id: light.bed_light
mode: single
"""


def test_an_automation_from_a_sentence_is_deployed_to_home_assistant_after_approval(workdir, scripted, llm):
    automation_id = "steward_e2e_bed_light_at_night"
    ha("DELETE", f"/api/config/automation/config/{automation_id}")
    env = {"HA_URL": HA_URL, "HA_TOKEN": HA_TOKEN, "OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}
    server = start_steward("steward-ha-developer", workdir, env)
    try:
        # A time Home Assistant's own validator refuses: the structure is fine,
        # so only Home Assistant can tell.
        bad = NIGHT_LIGHT_YAML.replace('"22:30:00"', '"25:99:00"')
        llm.script(
            tool_call("propose_automation", json.dumps({"description": "turn the bed light on every night at 22:30"})),
            tool_call("validate_automation", json.dumps({"yaml": bad})),
            tool_call("save_automation", json.dumps({"id": automation_id, "yaml": NIGHT_LIGHT_YAML})),
        )
        conversation_id = server.http.post("/api/conversations", json={}).json()["id"]
        r = server.http.post(
            f"/api/conversations/{conversation_id}/messages",
            json={"content": "Turn the bed light on every night at 22:30"},
        )
        asked = r.json()["content"]
        assert f"create automation 'Bed light at night' ({automation_id})" in asked, asked
        assert "alias: Bed light at night" in asked and "entity_id: light.bed_light" in asked, asked
        developer_round = llm.chat_requests()[2]["body"]["messages"]
        verdict = json.loads([m for m in developer_round if m["role"] == "tool"][-1]["content"])
        assert verdict["valid"] is False, verdict
        assert any("Home Assistant rejects the triggers" in e for e in verdict["errors"]), verdict
        assert ha("GET", f"/api/config/automation/config/{automation_id}").status_code == 404, "nothing before approval"

        r = server.http.post(f"/api/conversations/{conversation_id}/messages", json={"content": "approve"})
        assert r.json()["content"].startswith("Done ("), r.json()
        saved = ha("GET", f"/api/config/automation/config/{automation_id}")
        assert saved.status_code == 200, saved.text
        assert saved.json()["alias"] == "Bed light at night"
        assert saved.json()["actions"][0]["target"]["entity_id"] == "light.bed_light"
        states = ha("GET", "/api/states").json()
        loaded = [s for s in states if s["entity_id"].startswith("automation.") and s["attributes"].get("id") == automation_id]
        assert loaded and loaded[0]["state"] == "on", loaded
    finally:
        ha("DELETE", f"/api/config/automation/config/{automation_id}")
        server.http.close()
        server.proc.stop()


def test_the_diagnosis_flow_runs_against_home_assistant(workdir, scripted, llm):
    env = {"HA_URL": HA_URL, "HA_TOKEN": HA_TOKEN, "OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}
    server = start_steward("steward-ha-diagnosis", workdir, env)
    meter = "sensor.total_energy_kwh"
    try:
        llm.script(
            {
                "type": "tool_calls",
                "calls": [
                    {"name": "get_ha_logs", "arguments": "{}"},
                    {"name": "check_ha_config", "arguments": "{}"},
                    {"name": "get_entity_history", "arguments": json.dumps({"entity_ids": [meter], "detailed": True})},
                ],
            },
            tool_call(
                "diagnose_issue",
                json.dumps(
                    {
                        "entity_ids": [meter],
                        "diagnostic_context": "config check and logs gathered above",
                        "instructions": "Is the energy meter reporting?",
                    }
                ),
            ),
            text("Findings: the meter reports. Likely cause: none. Recommendations: none."),
            text("Diagnosis: the energy meter is reporting normally."),
        )
        conversation_id = server.http.post("/api/conversations", json={}).json()["id"]
        r = server.http.post(
            f"/api/conversations/{conversation_id}/messages", json={"content": "is my energy meter broken?"}
        )
        assert r.json()["content"] == "Diagnosis: the energy meter is reporting normally.", r.json()
        requests = [q["body"] for q in llm.chat_requests()]
        assert len(requests) == 4, requests
        evidence = [m["content"] for m in requests[1]["messages"] if m["role"] == "tool"]
        assert len(evidence) == 3 and all(not e.startswith("error") for e in evidence), evidence
        assert '"valid":true' in evidence[1].replace(" ", ""), evidence[1]
        assert requests[2]["messages"][0]["content"].startswith("You are Steward's data scientist")
        brief = requests[2]["messages"][1]["content"]
        assert "Is the energy meter reporting?" in brief and meter in brief, brief
        assert "Steward's own analysis (get_entity_history" in brief, brief
        answer = [m for m in requests[3]["messages"] if m["role"] == "tool"][-1]["content"]
        assert answer.startswith("data-scientist answered:\nFindings:"), answer
    finally:
        server.http.close()
        server.proc.stop()


def serve_fails(env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    port = free_port()
    return subprocess.run(
        [str(steward_binary()), "serve", "--port", str(port), "--data-dir", f"/tmp/steward-ha-bad-{port}"],
        env=clean_env(env_extra),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_a_rejected_token_stops_the_start_with_a_clear_error():
    run = serve_fails({"HA_URL": HA_URL, "HA_TOKEN": "not-a-valid-token"})
    assert run.returncode != 0
    assert "cannot use Home Assistant" in run.stderr and "HA_TOKEN" in run.stderr, run.stderr
    assert "not-a-valid-token" not in run.stderr


def test_an_unreachable_home_assistant_stops_the_start_with_a_clear_error():
    run = serve_fails({"HA_URL": f"http://127.0.0.1:{free_port()}", "HA_TOKEN": "whatever-token"})
    assert run.returncode != 0
    assert "cannot use Home Assistant" in run.stderr, run.stderr
    assert "whatever-token" not in run.stderr
