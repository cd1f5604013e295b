"""Streamed chat completions, iterated with the official SDK."""

import json

from helpers import CONVERSATION_HEADER, scripted_prompt_tokens, scripted_tokens, text

SCRIPTED = "Streaming works, one piece at a time."


def test_stream_with_usage(steward, llm):
    llm.script(text(SCRIPTED))
    client = steward.client()
    stream = client.chat.completions.create(
        model="architect",
        messages=[{"role": "user", "content": "Stream please"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert len(chunks) >= 3, chunks

    ids = {c.id for c in chunks}
    assert len(ids) == 1 and ids.pop().startswith("chatcmpl-"), chunks
    assert all(c.object == "chat.completion.chunk" for c in chunks), chunks
    assert all(c.model == "architect" for c in chunks), chunks

    first = chunks[0]
    assert first.choices and first.choices[0].delta.role == "assistant", first

    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content == SCRIPTED

    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason is not None]
    assert len(finishing) == 1, chunks
    assert finishing[0].choices[0].finish_reason == "stop"

    last = chunks[-1]
    assert last.choices == [], last
    assert last.usage is not None, last
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0, last.usage
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens, last.usage
    assert last.usage.completion_tokens == scripted_tokens(len(SCRIPTED)), last.usage
    [upstream] = llm.chat_requests()
    assert last.usage.prompt_tokens == scripted_prompt_tokens(upstream["body"]), last.usage
    for c in chunks[:-1]:
        assert c.usage is None, c
        assert len(c.choices) == 1, c
    # The finish chunk comes right before the usage chunk.
    assert chunks[-2] is finishing[0], chunks


def test_stream_without_usage(steward, llm):
    llm.script(text(SCRIPTED))
    client = steward.client()
    stream = client.chat.completions.create(
        model="architect",
        messages=[{"role": "user", "content": "Stream without usage"}],
        stream=True,
    )
    chunks = list(stream)
    assert chunks, "no chunks"
    assert all(c.usage is None for c in chunks), chunks
    assert all(len(c.choices) == 1 for c in chunks), chunks
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == SCRIPTED
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices[0].finish_reason is not None]
    assert reasons == ["stop"], chunks
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_stream_raw_has_conversation_header_and_stores_the_answer(steward, llm):
    llm.script(text(SCRIPTED))
    client = steward.client()
    with client.chat.completions.with_streaming_response.create(
        model="architect",
        messages=[{"role": "user", "content": "Stream and store"}],
        stream=True,
    ) as response:
        assert response.status_code == 200
        assert response.headers.get("content-type", "").startswith("text/event-stream"), response.headers
        conversation_id = response.headers.get(CONVERSATION_HEADER)
        assert conversation_id, dict(response.headers)
        content = "".join(c.choices[0].delta.content or "" for c in response.parse() if c.choices)
    assert content == SCRIPTED
    stored = steward.conversation(conversation_id)
    assert [(m["role"], m["content"]) for m in stored["messages"]] == [
        ("user", "Stream and store"),
        ("assistant", SCRIPTED),
    ], stored


def test_stream_unicode_is_intact(steward, llm):
    content = "Grüße 👋 — 你好, ça va? ✓"
    llm.script(text(content))
    stream = steward.client().chat.completions.create(
        model="architect", messages=[{"role": "user", "content": "ünïcødé ✓"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == content
    [upstream] = llm.chat_requests()
    assert upstream["body"]["messages"][-1]["content"] == "ünïcødé ✓"


def _raw_frames(steward, body):
    """The `data:` payloads of a streamed response, read with plain httpx."""
    frames = []
    with steward.http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                frames.append(line[len("data:"):].strip())
            else:
                assert line == "" or line.startswith(":"), f"unexpected SSE line {line!r}"
    return frames


def test_stream_wire_format(steward, llm):
    """What non-SDK clients (Open WebUI, curl) parse: data frames, usage
    null on every chunk when asked for, absent otherwise, then [DONE]."""
    llm.script(text(SCRIPTED), text(SCRIPTED))
    messages = [{"role": "user", "content": "raw stream"}]
    frames = _raw_frames(steward, {"model": "architect", "messages": messages, "stream": True,
                                   "stream_options": {"include_usage": True}})
    assert frames[-1] == "[DONE]", frames
    chunks = [json.loads(f) for f in frames[:-1]]
    for c in chunks[:-1]:
        assert "usage" in c and c["usage"] is None, c
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0, chunks[-1]

    frames = _raw_frames(steward, {"model": "architect", "messages": messages, "stream": True})
    assert frames[-1] == "[DONE]", frames
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all("usage" not in c for c in chunks), chunks
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
