"""A tool-calling turn: tools run in Steward, the client sees only the answer."""

import json

from helpers import CONVERSATION_HEADER, scripted_prompt_tokens, scripted_tokens, text, tool_call

ANSWER = "It is exactly the time the tool said."
QUESTION = "What time is it?"


def _run_tool_turn(steward, llm, stream: bool):
    """Runs the scripted tool turn; returns (conversation id, usage)."""
    llm.script(tool_call("get_current_time", "{}", call_id="call_e2e_time"), text(ANSWER))
    client = steward.client()
    messages = [{"role": "user", "content": QUESTION}]
    if stream:
        with client.chat.completions.with_streaming_response.create(
            model="architect", messages=messages, stream=True, stream_options={"include_usage": True}
        ) as response:
            conversation_id = response.headers.get(CONVERSATION_HEADER)
            chunks = list(response.parse())
        content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish == ["stop"], chunks
        # The client never sees the tool call itself.
        for c in chunks:
            for choice in c.choices:
                assert not choice.delta.tool_calls, c
        assert chunks[-1].choices == [], chunks[-1]
        usage = chunks[-1].usage
    else:
        raw = client.chat.completions.with_raw_response.create(model="architect", messages=messages)
        conversation_id = raw.headers.get(CONVERSATION_HEADER)
        completion = raw.parse()
        content = completion.choices[0].message.content
        assert completion.choices[0].finish_reason == "stop"
        assert not completion.choices[0].message.tool_calls
        usage = completion.usage
    assert content == ANSWER
    assert conversation_id
    return conversation_id, usage


def _check_upstream_store_and_usage(steward, llm, conversation_id, usage):
    upstream = llm.chat_requests()
    assert len(upstream) == 2, upstream
    first, second = (r["body"]["messages"] for r in upstream)
    assert first[-1]["role"] == "user" and first[-1]["content"] == QUESTION, first
    assert "get_current_time" in [t["function"]["name"] for t in upstream[1]["body"]["tools"]]

    # The second request is the first plus the assistant's call and the result.
    assert second[: len(first)] == first, (first, second)
    call_msg, result_msg = second[len(first):]
    assert call_msg["role"] == "assistant", call_msg
    [call] = call_msg["tool_calls"]
    assert call["id"] == "call_e2e_time"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_current_time"
    assert json.loads(call["function"]["arguments"] or "{}") == {}
    assert result_msg["role"] == "tool", result_msg
    assert result_msg["tool_call_id"] == "call_e2e_time", result_msg
    assert "utc" in result_msg["content"], result_msg
    result = json.loads(result_msg["content"])
    assert result["utc"].endswith("Z") and isinstance(result["unix"], int), result

    stored = steward.conversation(conversation_id)
    messages = stored["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"], messages
    assert messages[0]["content"] == QUESTION
    assert [(c["id"], c["name"]) for c in messages[1]["tool_calls"]] == [("call_e2e_time", "get_current_time")]
    assert messages[2]["tool_call_id"] == "call_e2e_time"
    assert messages[2]["content"] == result_msg["content"]
    assert messages[3]["content"] == ANSWER
    assert not messages[3].get("tool_calls")
    assert [m["seq"] for m in messages] == list(range(4)), messages

    # Usage covers both model calls of the turn.
    assert usage is not None
    assert usage.prompt_tokens == sum(scripted_prompt_tokens(r["body"]) for r in upstream), usage
    assert usage.completion_tokens == scripted_tokens(len("get_current_time{}")) + scripted_tokens(len(ANSWER)), usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage


def test_tool_turn_non_streaming(steward, llm):
    conversation_id, usage = _run_tool_turn(steward, llm, stream=False)
    _check_upstream_store_and_usage(steward, llm, conversation_id, usage)


def test_tool_turn_streaming(steward, llm):
    conversation_id, usage = _run_tool_turn(steward, llm, stream=True)
    _check_upstream_store_and_usage(steward, llm, conversation_id, usage)


def test_text_before_a_tool_call_is_kept_apart_from_the_answer(steward, llm):
    llm.script(
        {"type": "tool_calls", "content": "Let me check.", "calls": [{"name": "get_current_time", "id": "call_e2e_2"}]},
        text("Done."),
    )
    completion = steward.client().chat.completions.create(
        model="architect", messages=[{"role": "user", "content": "time, please"}]
    )
    assert completion.choices[0].message.content == "Let me check.\n\nDone."


def test_unknown_tool_is_reported_to_the_model(steward, llm):
    llm.script(tool_call("delete_everything", "{}", call_id="call_e2e_bad"), text("I cannot do that."))
    completion = steward.client().chat.completions.create(
        model="architect", messages=[{"role": "user", "content": "wipe it"}]
    )
    assert completion.choices[0].message.content == "I cannot do that."
    result = llm.chat_requests()[1]["body"]["messages"][-1]
    assert result["role"] == "tool" and result["tool_call_id"] == "call_e2e_bad", result
    assert "delete_everything" in result["content"] and "get_current_time" in result["content"], result
