"""Continuing a stored conversation the way Open WebUI does: the client
sends its whole history again, plus the conversation header."""

import time

import httpx
import openai
import pytest

from helpers import CONVERSATION_HEADER, text


def test_continue_stores_only_the_new_messages(steward, llm):
    llm.script(text("First answer."), text("Second answer."))
    client = steward.client()

    history = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "First question"},
    ]
    raw = client.chat.completions.with_raw_response.create(model="architect", messages=history)
    conversation_id = raw.headers.get(CONVERSATION_HEADER)
    assert conversation_id
    first = raw.parse().choices[0].message.content
    assert first == "First answer."

    history += [
        {"role": "assistant", "content": first},
        {"role": "user", "content": "Second question"},
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="architect",
        messages=history,
        extra_headers={CONVERSATION_HEADER: conversation_id},
    )
    assert raw.headers.get(CONVERSATION_HEADER) == conversation_id
    assert raw.parse().choices[0].message.content == "Second answer."

    stored = steward.conversation(conversation_id)
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("system", "You are terse."),
        ("user", "First question"),
        ("assistant", "First answer."),
        ("user", "Second question"),
        ("assistant", "Second answer."),
    ], stored["messages"]
    assert [m["seq"] for m in stored["messages"]] == list(range(5))

    # The model saw the client's full history, after Steward's own system prompt.
    upstream = llm.chat_requests()
    assert len(upstream) == 2
    sent = [(m["role"], m.get("content")) for m in upstream[1]["body"]["messages"]]
    assert sent[0][0] == "system" and sent[0][1] != "You are terse.", sent
    assert sent[1:] == [(m["role"], m["content"]) for m in history], sent


def test_continue_with_streaming(steward, llm):
    llm.script(text("Streamed first."), text("Streamed second."))
    client = steward.client()
    history = [{"role": "user", "content": "Streamed question one"}]
    with client.chat.completions.with_streaming_response.create(
        model="architect", messages=history, stream=True
    ) as response:
        conversation_id = response.headers.get(CONVERSATION_HEADER)
        answer = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert answer == "Streamed first."
    history += [{"role": "assistant", "content": answer}, {"role": "user", "content": "Streamed question two"}]
    stream = client.chat.completions.create(
        model="architect",
        messages=history,
        stream=True,
        extra_headers={CONVERSATION_HEADER: conversation_id},
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Streamed second."
    stored = steward.conversation(conversation_id)
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("user", "Streamed question one"),
        ("assistant", "Streamed first."),
        ("user", "Streamed question two"),
        ("assistant", "Streamed second."),
    ]


def test_continue_unknown_conversation_is_not_found(steward, llm):
    llm.set_default(text("should not be asked"))
    client = steward.client()
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(
            model="architect",
            messages=[{"role": "user", "content": "hello?"}],
            extra_headers={CONVERSATION_HEADER: "conv-does-not-exist"},
        )
    assert info.value.code == "not_found", info.value.body
    assert "conv-does-not-exist" in info.value.body["message"], info.value.body
    assert llm.chat_requests() == [], "the model was asked although the conversation does not exist"


def test_client_history_with_tool_messages_reaches_the_model(steward, llm):
    """Open WebUI may send earlier tool calls and results in its history."""
    llm.script(text("You're welcome."))
    history = [
        {"role": "user", "content": "time?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_old", "type": "function", "function": {"name": "get_current_time", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_old", "content": '{"utc":"2020-01-01T00:00:00Z"}'},
        {"role": "assistant", "content": "It was 2020."},
        {"role": "user", "content": "thanks"},
    ]
    raw = steward.client().chat.completions.with_raw_response.create(model="architect", messages=history)
    assert raw.parse().choices[0].message.content == "You're welcome."
    [upstream] = llm.chat_requests()
    sent = upstream["body"]["messages"][1:]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"], sent
    assert sent[1]["tool_calls"][0]["id"] == "call_old"
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_current_time"
    assert sent[2]["tool_call_id"] == "call_old"
    assert sent[2]["content"] == '{"utc":"2020-01-01T00:00:00Z"}'
    stored = steward.conversation(raw.headers[CONVERSATION_HEADER])["messages"]
    assert [m["role"] for m in stored] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    assert stored[1]["tool_calls"][0]["id"] == "call_old"
    assert stored[2]["tool_call_id"] == "call_old"


def test_a_turn_finishes_and_is_stored_when_the_client_hangs_up(steward, llm):
    question = f"hang-up question {time.monotonic_ns()}"
    llm.script({"type": "delay", "ms": 600, "then": text("Answer nobody waited for.")})
    with pytest.raises(httpx.TimeoutException):
        steward.http.post(
            "/v1/chat/completions",
            json={"model": "architect", "messages": [{"role": "user", "content": question}]},
            timeout=httpx.Timeout(0.15),
        )
    deadline = time.monotonic() + 10
    messages = []
    while time.monotonic() < deadline:
        listed = steward.http.get("/api/conversations", params={"limit": 500}).json()["conversations"]
        found = [c for c in listed if c["title"] == question]
        if found:
            assert len(found) == 1, found
            messages = steward.conversation(found[0]["id"])["messages"]
            if len(messages) >= 2:
                break
        time.sleep(0.05)
    assert [(m["role"], m["content"]) for m in messages] == [
        ("user", question),
        ("assistant", "Answer nobody waited for."),
    ], messages
