"""Without a language model Steward still answers, and says how to add one."""

from helpers import CONVERSATION_HEADER


def test_no_llm_non_streaming_explains_the_setup(steward_no_llm):
    client = steward_no_llm.client()
    raw = client.chat.completions.with_raw_response.create(
        model="architect", messages=[{"role": "user", "content": "Are you there?"}]
    )
    assert raw.status_code == 200
    completion = raw.parse()
    content = completion.choices[0].message.content
    assert "OPENAI_API_KEY" in content, content
    assert "OLLAMA_HOST" in content, content
    assert completion.choices[0].finish_reason == "stop"
    # The help is stored like any answer.
    stored = steward_no_llm.conversation(raw.headers[CONVERSATION_HEADER])
    assert [m["role"] for m in stored["messages"]] == ["user", "assistant"]
    assert stored["messages"][1]["content"] == content


def test_no_llm_streaming_explains_the_setup(steward_no_llm):
    client = steward_no_llm.client()
    stream = client.chat.completions.create(
        model="architect",
        messages=[{"role": "user", "content": "Are you there?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "OPENAI_API_KEY" in content and "OLLAMA_HOST" in content, content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None, chunks[-1]


def test_no_llm_still_lists_the_models(steward_no_llm):
    assert "architect" in [m.id for m in steward_no_llm.client().models.list()]


def test_no_llm_home_commands_and_questions_still_work(steward_no_llm):
    """The local intent engine needs no model: a question is answered, a
    command asks for approval and runs once approved."""
    client = steward_no_llm.client()
    answer = client.chat.completions.create(
        model="architect", messages=[{"role": "user", "content": "is the front door locked?"}]
    )
    assert "front door" in answer.choices[0].message.content.lower(), answer

    history = [{"role": "user", "content": "set the living room blinds to 50%"}]
    asked = client.chat.completions.create(model="architect", messages=history).choices[0].message.content
    assert "cover.set_cover_position on Living Room Blinds" in asked and "Reply 'approve'" in asked, asked
    history += [{"role": "assistant", "content": asked}, {"role": "user", "content": "approve"}]
    done = client.chat.completions.create(model="architect", messages=history).choices[0].message.content
    assert done.startswith("Done ("), done
    assert "Living Room Blinds (cover.living_room_blinds) is now" in done, done
