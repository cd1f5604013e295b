"""Approvals through the real binary: the official openai SDK resending its
history (as Open WebUI does), the CLI, and crashes between approval and
execution and during it."""

from __future__ import annotations

import concurrent.futures
import json
import sqlite3
import subprocess
import time

import pytest

from helpers import CONVERSATION_HEADER, UPSTREAM_KEY, text, tool_call
from processes import clean_env, start_steward, steward_binary

KITCHEN_ON = json.dumps({"entity_id": "light.kitchen_ceiling", "action": "turn_on", "data": {"brightness_pct": 40}})


def proposals(steward, **params) -> list[dict]:
    r = steward.http.get("/api/proposals", params=params)
    assert r.status_code == 200, r.text
    return r.json()["proposals"]


def audit_actions(steward, approval_id: str) -> list[str]:
    r = steward.http.get("/api/audit", params={"limit": 1000})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["verified"]["ok"], report["verified"]
    return [e["action"] for e in report["entries"] if e["detail"].get("approval_id") == approval_id]


def test_chat_approval_through_the_sdk_with_the_history_resent(steward, llm):
    llm.script(tool_call("control_entity", KITCHEN_ON))
    client = steward.client()
    # Worded so the local intent engine leaves it to the model.
    history = [{"role": "user", "content": "it is a bit dark while I cook, could you help with that?"}]
    raw = client.chat.completions.with_raw_response.create(model="architect", messages=history)
    conversation_id = raw.headers[CONVERSATION_HEADER]
    asked = raw.parse().choices[0].message.content
    assert "Reply 'approve' to proceed" in asked, asked
    assert "light.turn_on on Kitchen Ceiling (light.kitchen_ceiling, now" in asked, asked
    assert "brightness_pct=40" in asked, asked
    pending = proposals(steward, status="pending", conversation_id=conversation_id)
    assert len(pending) == 1
    approval = pending[0]
    assert approval["id"] in asked
    assert approval["preview"]["targets"][0]["id"] == "light.kitchen_ceiling"

    # Like Open WebUI: the whole history again, no conversation header, streamed.
    history += [{"role": "assistant", "content": asked}, {"role": "user", "content": "approve"}]
    stream = client.chat.completions.create(model="architect", messages=history, stream=True)
    done = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert f"Done ({approval['id']})" in done, done
    assert "Kitchen Ceiling (light.kitchen_ceiling) is now on" in done, done
    assert len(llm.chat_requests()) == 1, "deciding needs no model call"

    decided = steward.http.get(f"/api/proposals/{approval['id']}").json()
    assert decided["status"] == "executed", decided
    assert decided["decided_by"] == "user:local"
    assert audit_actions(steward, approval["id"]).count("approval.executing") == 1
    # The outcome is in the stored conversation, for the next turn.
    stored = steward.conversation(conversation_id)
    assert any(m.get("tool_call_id") == f"{approval['id']}_run" for m in stored["messages"]), stored

    # Saying it again changes nothing.
    history += [{"role": "assistant", "content": done}, {"role": "user", "content": "approve"}]
    again = client.chat.completions.create(model="architect", messages=history)
    assert again.choices[0].message.content.startswith("Nothing is waiting"), again
    assert audit_actions(steward, approval["id"]).count("approval.executing") == 1


def test_reject_through_the_sdk_changes_nothing(steward, llm):
    llm.script(tool_call("control_entity", json.dumps({"entity_id": "lock.front_door", "action": "unlock"})))
    client = steward.client()
    history = [{"role": "user", "content": "unlock the front door"}]
    raw = client.chat.completions.with_raw_response.create(model="architect", messages=history)
    conversation_id = raw.headers[CONVERSATION_HEADER]
    asked = raw.parse().choices[0].message.content
    assert "lock.unlock on Front Door Lock (lock.front_door, now locked)" in asked, asked
    history += [{"role": "assistant", "content": asked}, {"role": "user", "content": "reject"}]
    reply = client.chat.completions.create(model="architect", messages=history)
    assert reply.choices[0].message.content.startswith("Rejected ("), reply
    [approval] = proposals(steward, conversation_id=conversation_id)
    assert approval["status"] == "rejected"
    assert "approval.executing" not in audit_actions(steward, approval["id"])


def run_cli(steward, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(steward_binary()), *args, "--url", steward.url],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def ask_for(steward, llm, arguments: str) -> dict:
    """Starts a conversation whose model asks for `control_entity(arguments)`."""
    llm.script(tool_call("control_entity", arguments))
    r = steward.http.post("/api/conversations", json={})
    conversation_id = r.json()["id"]
    r = steward.http.post(f"/api/conversations/{conversation_id}/messages", json={"content": "do it"})
    assert r.status_code == 200, r.text
    [approval] = proposals(steward, conversation_id=conversation_id)
    return approval


def test_the_cli_lists_approves_and_rejects(steward, llm):
    first = ask_for(steward, llm, json.dumps({"entity_id": "cover.garage_door", "action": "open_cover"}))
    second = ask_for(steward, llm, json.dumps({"entity_id": "light.hallway", "action": "turn_off"}))

    listed = run_cli(steward, "approvals", "--status", "pending")
    assert listed.returncode == 0, listed.stderr
    assert first["id"] in listed.stdout and second["id"] in listed.stdout, listed.stdout
    assert "cover.open_cover on Garage Door (cover.garage_door, now closed)" in listed.stdout

    approved = run_cli(steward, "approve", first["id"])
    assert approved.returncode == 0, approved.stderr
    assert f"{first['id']}  executed" in approved.stdout, approved.stdout
    rejected = run_cli(steward, "reject", second["id"], "--json")
    assert rejected.returncode == 0, rejected.stderr
    assert json.loads(rejected.stdout)["status"] == "rejected"

    # Deciding again fails loudly, naming the state it is in.
    again = run_cli(steward, "approve", first["id"])
    assert again.returncode == 1
    assert "already executed" in again.stderr, again.stderr
    missing = run_cli(steward, "approve", "apr_000000000000")
    assert missing.returncode == 1 and "not found" in missing.stderr, missing.stderr
    bad = run_cli(steward, "approvals", "--status", "maybe")
    assert bad.returncode == 1 and "status must be one of" in bad.stderr, bad.stderr


def test_simultaneous_approvals_run_the_action_once(steward, llm):
    approval = ask_for(steward, llm, json.dumps({"entity_id": "switch.coffee_machine", "action": "turn_on"}))

    def approve(_):
        return steward.fresh_http().post(f"/api/proposals/{approval['id']}/approve").status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(approve, range(6)))
    assert statuses == [200, 409, 409, 409, 409, 409], statuses
    assert audit_actions(steward, approval["id"]).count("approval.executing") == 1


@pytest.fixture()
def crash_env(scripted):
    return {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}


def test_kill_9_during_execution_never_runs_it_again(workdir, llm, crash_env, tmp_path):
    data_dir = tmp_path / "data"
    # Every service call of this demo home takes 20 s: time to crash mid-call.
    slow = {**crash_env, "STEWARD_DEMO_LATENCY_MS": "20000"}
    first = start_steward("steward-crash-1", workdir, slow, data_dir=data_dir)
    try:
        approval = ask_for(first, llm, KITCHEN_ON)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(lambda: first.fresh_http().post(f"/api/proposals/{approval['id']}/approve"))
            deadline = time.monotonic() + 10
            started = None
            while time.monotonic() < deadline and not started:
                started = first.http.get(f"/api/proposals/{approval['id']}").json().get("started_at")
                time.sleep(0.02)
            assert started, "the approved action never started"
            first.proc.popen.kill()
            first.proc.popen.wait(timeout=10)
    finally:
        first.http.close()
        first.proc.stop()

    second = start_steward("steward-crash-2", workdir, crash_env, data_dir=data_dir)
    try:
        after = second.http.get(f"/api/proposals/{approval['id']}").json()
        assert after["status"] == "failed", after
        assert "interrupted" in after["outcome"] and "not run again" in after["outcome"], after
        assert audit_actions(second, approval["id"]).count("approval.executing") == 1
        stored = second.conversation(approval["conversation_id"])
        assert stored["messages"][-1]["content"].startswith(f"Failed ({approval['id']})"), stored["messages"][-1]
        assert second.http.post(f"/api/proposals/{approval['id']}/approve").status_code == 409
    finally:
        second.http.close()
        second.proc.stop()


def test_kill_9_between_approval_and_execution_runs_it_once_after_restart(workdir, llm, crash_env, tmp_path):
    data_dir = tmp_path / "data"
    first = start_steward("steward-gap-1", workdir, crash_env, data_dir=data_dir)
    try:
        approval = ask_for(first, llm, KITCHEN_ON)
        first.proc.popen.kill()
        first.proc.popen.wait(timeout=10)
    finally:
        first.http.close()
        first.proc.stop()
    # The state a crash right after the decision leaves: approved, never started.
    with sqlite3.connect(data_dir / "steward.db") as db:
        changed = db.execute(
            "UPDATE approvals SET status = 'approved', decided_by = 'user:local', decided_at = ?, scope = 'once' "
            "WHERE id = ? AND status = 'pending'",
            (int(time.time() * 1000), approval["id"]),
        ).rowcount
    assert changed == 1

    for run in (2, 3):
        restarted = start_steward(f"steward-gap-{run}", workdir, crash_env, data_dir=data_dir)
        try:
            after = restarted.http.get(f"/api/proposals/{approval['id']}").json()
            assert after["status"] == "executed", after
            assert audit_actions(restarted, approval["id"]).count("approval.executing") == 1, f"run {run}"
            assert "approved before a restart" in restarted.conversation(approval["conversation_id"])["messages"][-1][
                "content"
            ]
        finally:
            restarted.http.close()
            restarted.proc.stop()


def test_the_demo_home_says_so(steward, llm):
    r = steward.http.get("/v1/models")
    ids = [m["id"] for m in r.json()["data"]]
    assert "librarian" in ids, ids
    llm.script(text("ok"))
    steward.client().chat.completions.create(model="architect", messages=[{"role": "user", "content": "hi"}])
    system = llm.chat_requests()[-1]["body"]["messages"][0]["content"]
    assert "built-in demo home, a simulated house" in system, system
    # The home's compact summary, not its catalog.
    assert "63 entities. Areas: Kitchen" in system and "Domains: " in system, system
    assert "light.kitchen_ceiling" not in system, system
    assert "running against the built-in demo home" in steward.proc.logs()


def test_debug_mode_logs_tool_io_with_secrets_redacted(workdir, scripted, llm):
    toml = "[engine]\ndebug = true\n"
    env = {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}
    server = start_steward("steward-debug", workdir, env, toml)
    try:
        # The model puts the provider's key into a tool call; the tool's
        # error quotes it back.
        arguments = json.dumps({"entity_id": f"light.{UPSTREAM_KEY}"})
        llm.script(tool_call("get_state", arguments), text("done"))
        r = server.http.post("/api/conversations", json={})
        conversation_id = r.json()["id"]
        r = server.http.post(
            f"/api/conversations/{conversation_id}/messages", params={"stream": "true"}, json={"content": "x"}
        )
        assert r.status_code == 200, r.text
        debug = [
            json.loads(line[len("data: ") :])
            for line in r.text.splitlines()
            if line.startswith("data: ") and '"type":"tool_debug"' in line
        ]
        assert [d["phase"] for d in debug] == ["input", "output"], r.text
        assert json.loads(debug[0]["content"]) == {"entity_id": "light.[redacted]"}
        assert "[redacted]" in debug[1]["content"], debug[1]
        time.sleep(0.2)
        logs = server.proc.logs(max_lines=2000)
        assert "tool i/o" in logs, logs
        assert UPSTREAM_KEY not in logs, logs
    finally:
        server.http.close()
        server.proc.stop()


def test_an_approved_automation_is_committed_to_the_git_audit_repository(workdir, scripted, llm, tmp_path):
    repo = tmp_path / "infra-audit"
    toml = f'[audit]\ngit_repo = "{repo}"\n'
    env = {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}
    server = start_steward("steward-git-audit", workdir, env, toml)
    try:
        config = {
            "alias": "Porch light at sunset",
            "triggers": [{"trigger": "sun", "event": "sunset"}],
            "actions": [{"action": "light.turn_on", "target": {"entity_id": "light.garden_path"}}],
            "mode": "single",
        }
        llm.script(tool_call("save_automation", json.dumps({"id": "porch_light", "config": config})))
        r = server.http.post("/api/conversations", json={"agent": "developer"})
        conversation_id = r.json()["id"]
        r = server.http.post(f"/api/conversations/{conversation_id}/messages", json={"content": "porch light at sunset"})
        asked = r.json()["content"]
        assert "create automation 'Porch light at sunset' (porch_light)" in asked, asked
        assert "alias: Porch light at sunset" in asked and "- trigger: sun" in asked, asked
        [approval] = proposals(server, conversation_id=conversation_id)

        r = server.http.post(f"/api/conversations/{conversation_id}/messages", json={"content": "approve"})
        assert f"Done ({approval['id']})" in r.json()["content"], r.json()
        log = subprocess.run(
            ["git", "-C", str(repo), "log", "--format=%s"], capture_output=True, text=True, check=True
        ).stdout.splitlines()
        assert log == [f"infra({approval['id']}): save automation porch_light: Porch light at sunset"], log
        saved = (repo / "automations" / "porch_light.yaml").read_text()
        assert saved.startswith("alias: Porch light at sunset\n"), saved
        assert "entity_id: light.garden_path" in saved, saved
        outcome = server.http.get(f"/api/proposals/{approval['id']}").json()["outcome"]
        assert '"commit"' in outcome, outcome
    finally:
        server.http.close()
        server.proc.stop()


def test_a_home_command_is_understood_locally_and_still_asks(steward, llm):
    client = steward.client()
    history = [{"role": "user", "content": "unlock the back door lock"}]
    raw = client.chat.completions.with_raw_response.create(model="architect", messages=history)
    asked = raw.parse().choices[0].message.content
    assert "lock.unlock on Back Door Lock (lock.back_door, now locked)" in asked, asked
    assert llm.chat_requests() == [], "understood without a model"
    history += [{"role": "assistant", "content": asked}, {"role": "user", "content": "reject"}]
    reply = client.chat.completions.create(model="architect", messages=history)
    assert reply.choices[0].message.content.startswith("Rejected ("), reply
    answer = client.chat.completions.create(
        model="architect", messages=[{"role": "user", "content": "is the back door locked?"}]
    )
    assert "locked" in answer.choices[0].message.content.lower(), answer
    assert llm.chat_requests() == []
