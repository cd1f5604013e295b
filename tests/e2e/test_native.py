"""The native /api/conversations routes, and how they meet the OpenAI API."""

import json
import time

from helpers import CONVERSATION_HEADER, error_object, text, tool_call


def _sse_events(body: str):
    events = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((fields.get("event"), json.loads(fields["data"])))
    return events


def test_native_conversation_round_trip(steward, llm):
    llm.script(text("Native answer."))
    r = steward.http.post("/api/conversations", json={"agent": "architect", "title": "Native"})
    assert r.status_code == 201, r.text
    conversation = r.json()
    assert conversation["agent"] == "architect" and conversation["title"] == "Native"

    r = steward.http.post(f"/api/conversations/{conversation['id']}/messages", json={"content": "native hi"})
    assert r.status_code == 200, r.text
    assert r.headers[CONVERSATION_HEADER] == conversation["id"]
    reply = r.json()
    assert reply["conversation_id"] == conversation["id"]
    assert reply["content"] == "Native answer."
    assert reply["finish_reason"] == "stop"
    assert reply["steps"] == 1
    assert [(m["role"], m["content"]) for m in reply["messages"]] == [
        ("user", "native hi"),
        ("assistant", "Native answer."),
    ]

    # The OpenAI API continues the same stored conversation.
    llm.script(text("OpenAI answer."))
    completion = steward.client().chat.completions.create(
        model="architect",
        messages=[
            {"role": "user", "content": "native hi"},
            {"role": "assistant", "content": "Native answer."},
            {"role": "user", "content": "openai hi"},
        ],
        extra_headers={CONVERSATION_HEADER: conversation["id"]},
    )
    assert completion.choices[0].message.content == "OpenAI answer."
    stored = steward.conversation(conversation["id"])
    assert [m["content"] for m in stored["messages"]] == ["native hi", "Native answer.", "openai hi", "OpenAI answer."]


def test_native_stream_events(steward, llm):
    llm.script(tool_call("get_current_time", call_id="call_native"), text("Native time."))
    conversation = steward.http.post("/api/conversations", json={}).json()
    r = steward.http.post(f"/api/conversations/{conversation['id']}/messages?stream=true", json={"content": "time?"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = _sse_events(r.text)
    kinds = [k for k, _ in events]
    assert all(k == data["type"] for k, data in events), events
    assert kinds[0] == "turn_started" and kinds[-1] == "turn_finished", kinds
    assert "tool_call_started" in kinds and "tool_result" in kinds, kinds
    assert kinds.index("tool_call_started") < kinds.index("tool_result") < kinds.index("text_delta"), kinds
    result = next(d for k, d in events if k == "tool_result")
    assert result["ok"] is True and "utc" in result["output"], result
    assert "".join(d["delta"] for k, d in events if k == "text_delta") == "Native time."
    assert events[-1][1]["finish_reason"] == "stop" and events[-1][1]["steps"] == 2, events[-1]
    stored_roles = [d["message"]["role"] for k, d in events if k == "message_stored"]
    assert stored_roles == ["user", "assistant", "tool", "assistant"], stored_roles


def test_native_errors(steward, llm):
    llm.set_default(text("should not be asked"))
    r = steward.http.post("/api/conversations/conv-missing/messages", json={"content": "hi"})
    assert r.status_code == 404
    assert error_object(r.json())["code"] == "not_found"
    r = steward.http.get("/api/conversations/conv-missing")
    assert r.status_code == 404
    error_object(r.json())
    r = steward.http.post("/api/conversations", json={"agent": "nope"})
    assert r.status_code == 404
    assert error_object(r.json())["param"] == "agent"
    r = steward.http.get("/api/conversations", params={"limit": "0"})
    assert r.status_code == 400
    assert error_object(r.json())["param"] == "limit"
    assert llm.chat_requests() == []


def test_native_empty_message_names_the_content_field(steward, llm):
    """The error's `param` must name a field of the request that was sent."""
    llm.set_default(text("should not be asked"))
    conversation = steward.http.post("/api/conversations", json={}).json()
    r = steward.http.post(f"/api/conversations/{conversation['id']}/messages", json={"content": "  "})
    assert r.status_code == 400, r.text
    error = error_object(r.json())
    assert error["param"] == "content", error
    assert llm.chat_requests() == []


def test_conversations_are_listed_most_recent_first(steward, llm):
    llm.set_default(text("ok"))
    client = steward.client()
    ids = {}
    for name in ("older", "newer"):
        raw = client.chat.completions.with_raw_response.create(
            model="architect", messages=[{"role": "user", "content": f"list {name} {time.monotonic_ns()}"}]
        )
        ids[name] = raw.headers[CONVERSATION_HEADER]
        time.sleep(0.005)
    # Other tests' turns may still be finishing on this server: compare only ours.
    listed = steward.http.get("/api/conversations", params={"limit": 500}).json()["conversations"]
    ours = [c["id"] for c in listed if c["id"] in ids.values()]
    assert ours == [ids["newer"], ids["older"]], listed
    # Continuing the older one makes it the most recent.
    client.chat.completions.create(
        model="architect",
        messages=[{"role": "user", "content": "again"}],
        extra_headers={CONVERSATION_HEADER: ids["older"]},
    )
    listed = steward.http.get("/api/conversations", params={"limit": 500}).json()["conversations"]
    ours = [c["id"] for c in listed if c["id"] in ids.values()]
    assert ours == [ids["older"], ids["newer"]], listed


def _metric(text_: str, name: str) -> float:
    for line in text_.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_requests_and_turns(steward, llm):
    before = steward.http.get("/metrics").text
    llm.script(text("counted"))
    steward.client().chat.completions.create(model="architect", messages=[{"role": "user", "content": "count me"}])
    r = steward.http.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    lines = r.text.splitlines()
    assert any(
        l.startswith("steward_http_requests_total{") and 'route="/v1/chat/completions"' in l and 'status="200"' in l
        for l in lines
    ), r.text[:2000]
    for name in ('steward_turns_total{outcome="completed"}', 'steward_llm_calls_total{outcome="ok"}'):
        assert _metric(r.text, name) >= _metric(before, name) + 1, (name, r.text[:3000])
