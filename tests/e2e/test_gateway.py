"""Gateway mode through the official SDK: tiers and provider/model names
routed straight to providers speaking other wire formats, with the client's
tools, the budget, and the usage report."""

import json

import openai
import pytest

from helpers import text, tool_call


def test_gateway_models_are_listed(steward_gateway):
    ids = [m.id for m in steward_gateway.client().models.list()]
    assert ids[0] == "architect", ids
    for expected in ["fast", "smart", "cloud/claude-e2e", "home/llama-e2e"]:
        assert expected in ids, ids


def test_a_spent_budget_falls_back_to_the_free_local_model(steward_gateway, llm):
    llm.script(text("answered at home"))
    r = steward_gateway.client().chat.completions.create(
        model="smart", messages=[{"role": "user", "content": "hello"}]
    )
    assert r.choices[0].message.content == "answered at home"
    paths = [q["path"] for q in llm.requests()]
    assert paths == ["/api/chat"], f"only the local Ollama-style deployment was called: {paths}"


def test_the_clients_tools_round_trip_through_a_local_model(steward_gateway, llm):
    llm.script(tool_call("lookup", '{"q": "weather"}'), text("It is sunny."))
    client = steward_gateway.client()
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}}}]
    messages = [{"role": "user", "content": "weather?"}]
    first = client.chat.completions.create(model="home/llama-e2e", messages=messages, tools=tools)
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"q": "weather"}
    messages += [first.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "sunny"}]
    second = client.chat.completions.create(model="home/llama-e2e", messages=messages, tools=tools, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(second)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "It is sunny."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    # Upstream, in Ollama's format: the tool result went back with the tool's name.
    sent = llm.requests()[-1]["body"]
    assert sent["messages"][-1] == {"role": "tool", "content": "sunny", "tool_name": "lookup"}, sent["messages"]
    assert sent["tools"][0]["function"]["name"] == "lookup"


def test_a_spent_budget_reaches_free_models_of_other_tiers(steward_gateway, llm):
    # `fast` holds only the paid model; the local Ollama-style one is in other tiers.
    llm.script(text("from home"))
    r = steward_gateway.client().chat.completions.create(model="fast", messages=[{"role": "user", "content": "hi"}])
    assert r.choices[0].message.content == "from home"
    assert [q["path"] for q in llm.requests()] == ["/api/chat"]


def test_no_free_deployment_means_429_budget_exceeded(steward_paid_only, llm):
    for model in ["smart", "cloud/claude-e2e", "architect"]:
        with pytest.raises(openai.RateLimitError) as info:
            steward_paid_only.client().chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
        e = info.value
        assert e.status_code == 429
        assert e.body["type"] == "budget_exceeded" and e.body["code"] == "budget_exceeded", e.body
        assert "overall daily budget" in e.body["message"], e.body
    assert llm.requests() == [], "nothing was sent to the paid provider"


def test_usage_reports_local_share_and_budgets(steward_gateway, llm):
    llm.script(text("counted"))
    steward_gateway.client().chat.completions.create(model="home/llama-e2e", messages=[{"role": "user", "content": "count me"}])
    report = steward_gateway.http.get("/api/usage", params={"days": 1}).json()
    assert report["requests"] >= 1
    assert report["local_share"] == 1.0, report
    home = [line for line in report["by_model"] if line["key"] == "home/llama-e2e"]
    assert home and home[0]["ok_requests"] >= 1 and home[0]["cost"] == 0.0, report
    budget = report["budgets"][0]
    assert (budget["scope"], budget["period"], budget["spent"]) == ("cloud", "monthly", 0.0), budget
