"""Non-streaming chat completions through the official SDK."""

import concurrent.futures

from helpers import CONVERSATION_HEADER, UPSTREAM_KEY, scripted_prompt_tokens, scripted_tokens, text


def test_chat_completion_returns_the_scripted_text(steward, llm):
    llm.script(text("Hello from the scripted model."))
    client = steward.client()
    completion = client.chat.completions.create(
        model="architect",
        messages=[{"role": "user", "content": "Say hello."}],
    )
    assert completion.id.startswith("chatcmpl-"), completion.id
    assert completion.object == "chat.completion"
    assert completion.model == "architect"
    assert len(completion.choices) == 1
    choice = completion.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "Hello from the scripted model."
    assert choice.finish_reason == "stop"
    assert not choice.message.tool_calls

    usage = completion.usage
    assert usage is not None
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage

    # The scripted model counts a quarter of the characters (at least 1):
    # Steward must pass on what the provider reported.
    [upstream] = llm.chat_requests()
    assert usage.prompt_tokens == scripted_prompt_tokens(upstream["body"]), (usage, upstream["body"])
    assert usage.completion_tokens == scripted_tokens(len("Hello from the scripted model.")), usage


def test_upstream_request_is_what_the_provider_expects(steward, llm):
    llm.script(text("ok"))
    client = steward.client()
    client.chat.completions.create(
        model="architect",
        messages=[
            {"role": "system", "content": "Client system prompt."},
            {"role": "user", "content": "First question"},
        ],
    )
    [upstream] = llm.chat_requests()
    assert upstream["method"] == "POST"
    # Steward's own provider key goes upstream, never the client's.
    assert upstream["headers"].get("authorization") == f"Bearer {UPSTREAM_KEY}", upstream["headers"]
    body = upstream["body"]
    messages = body["messages"]
    assert messages[0]["role"] == "system"
    assert messages[-1] == {"role": "user", "content": "First question"} or (
        messages[-1]["role"] == "user" and messages[-1]["content"] == "First question"
    ), messages
    assert any(m["role"] == "system" and m["content"] == "Client system prompt." for m in messages), messages
    tool_names = [t["function"]["name"] for t in body.get("tools", [])]
    assert "get_current_time" in tool_names, body


def test_raw_response_has_the_conversation_header(steward, llm):
    llm.script(text("Raw hello."))
    client = steward.client()
    raw = client.chat.completions.with_raw_response.create(
        model="architect",
        messages=[{"role": "user", "content": "Hello raw"}],
    )
    assert raw.status_code == 200
    conversation_id = raw.headers.get(CONVERSATION_HEADER)
    assert conversation_id, dict(raw.headers)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Raw hello."

    stored = steward.conversation(conversation_id)
    assert stored["id"] == conversation_id
    assert stored["agent"] == "architect"
    roles = [(m["role"], m["content"]) for m in stored["messages"]]
    assert roles == [("user", "Hello raw"), ("assistant", "Raw hello.")], stored


def test_each_new_chat_gets_its_own_conversation(steward, llm):
    llm.script(text("one"), text("two"))
    client = steward.client()
    ids = []
    for question in ("q1", "q2"):
        raw = client.chat.completions.with_raw_response.create(
            model="architect", messages=[{"role": "user", "content": question}]
        )
        ids.append(raw.headers.get(CONVERSATION_HEADER))
    assert all(ids) and ids[0] != ids[1], ids


def test_concurrent_chats_are_kept_apart(steward, llm):
    llm.set_default({"type": "delay", "ms": 100, "then": text("same answer")})
    client = steward.client()

    def ask(i):
        raw = client.chat.completions.with_raw_response.create(
            model="architect", messages=[{"role": "user", "content": f"parallel question {i}"}]
        )
        return i, raw.headers.get(CONVERSATION_HEADER), raw.parse().choices[0].message.content

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(ask, range(8)))
    assert len({cid for _, cid, _ in results}) == 8, results
    for i, cid, content in results:
        assert content == "same answer"
        stored = steward.conversation(cid)["messages"]
        assert [(m["role"], m["content"]) for m in stored] == [
            ("user", f"parallel question {i}"),
            ("assistant", "same answer"),
        ], stored
    assert len(llm.chat_requests()) == 8
