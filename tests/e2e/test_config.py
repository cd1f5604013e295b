"""A Steward configured through steward.toml: an extra agent, a step limit
and a model timeout, as a client sees them."""


import openai
import pytest

from helpers import CONVERSATION_HEADER, text, tool_call


def test_configured_agent_is_a_model(steward_configured, llm):
    client = steward_configured.client()
    ids = [m.id for m in client.models.list()]
    assert "architect" in ids and "energy" in ids, ids
    assert client.models.retrieve("energy").id == "energy"

    llm.script(text("About 3 kWh."))
    completion = client.chat.completions.create(
        model="energy", messages=[{"role": "user", "content": "How much today?"}]
    )
    assert completion.model == "energy"
    assert completion.choices[0].message.content == "About 3 kWh."
    [upstream] = llm.chat_requests()
    system = upstream["body"]["messages"][0]
    assert system["role"] == "system"
    assert "You are an energy analyst. Be precise." in system["content"], system
    assert [t["function"]["name"] for t in upstream["body"]["tools"]] == ["get_current_time"]


def test_step_limit_ends_the_turn_with_length(steward_configured, llm):
    llm.set_default(tool_call("get_current_time"))
    client = steward_configured.client()
    raw = client.chat.completions.with_raw_response.create(
        model="architect", messages=[{"role": "user", "content": "loop forever"}]
    )
    completion = raw.parse()
    choice = completion.choices[0]
    assert choice.finish_reason == "length", completion
    assert "step limit" in choice.message.content, choice.message.content
    assert len(llm.chat_requests()) == 3
    stored = steward_configured.conversation(raw.headers[CONVERSATION_HEADER])["messages"]
    assert [m["role"] for m in stored] == ["user"] + ["assistant", "tool"] * 3 + ["assistant"], stored
    assert stored[-1]["content"] == choice.message.content


def test_step_limit_when_streaming(steward_configured, llm):
    llm.set_default(tool_call("get_current_time"))
    stream = steward_configured.client().chat.completions.create(
        model="architect", messages=[{"role": "user", "content": "loop forever"}], stream=True
    )
    chunks = list(stream)
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert reasons == ["length"], chunks
    assert "step limit" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_model_timeout_is_504(steward_configured, llm):
    llm.script({"type": "delay", "ms": 2500, "then": text("too late")})
    client = steward_configured.client()
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="architect", messages=[{"role": "user", "content": "slow"}])
    e = info.value
    assert e.status_code == 504, e
    assert e.body["code"] == "timeout", e.body
    assert "openai" in e.body["message"], e.body
    # One deployment, one try: the timeout is not retried away.
    assert len(llm.chat_requests()) == 1, llm.chat_requests()
