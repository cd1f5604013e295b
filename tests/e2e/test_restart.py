"""Shutdown and restart: running requests finish, nothing stored is lost."""

import concurrent.futures
import signal
import time

import pytest

from helpers import CONVERSATION_HEADER, UPSTREAM_KEY, text
from processes import start_steward


@pytest.fixture()
def own_steward_env(scripted):
    return {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}


def test_sigterm_lets_the_running_request_finish_and_restart_keeps_everything(
    workdir, llm, own_steward_env, tmp_path
):
    data_dir = tmp_path / "data"
    first = start_steward("steward-restart-1", workdir, own_steward_env, data_dir=data_dir)
    try:
        llm.script(text("Before the restart."), {"type": "delay", "ms": 700, "then": text("Finished during shutdown.")})
        client = first.client()
        raw = client.chat.completions.with_raw_response.create(
            model="architect", messages=[{"role": "user", "content": "first"}]
        )
        conversation_id = raw.headers[CONVERSATION_HEADER]
        history = [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "Before the restart."},
            {"role": "user", "content": "second"},
        ]
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pending = pool.submit(
                client.chat.completions.create,
                model="architect",
                messages=history,
                extra_headers={CONVERSATION_HEADER: conversation_id},
            )
            deadline = time.monotonic() + 5
            while len(llm.chat_requests()) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert len(llm.chat_requests()) == 2, "the second request did not reach the model"
            first.proc.popen.send_signal(signal.SIGTERM)
            completion = pending.result(timeout=10)
        assert completion.choices[0].message.content == "Finished during shutdown."
        assert first.proc.popen.wait(timeout=10) == 0, first.proc.logs()
    finally:
        first.http.close()
        first.proc.stop()

    second = start_steward("steward-restart-2", workdir, own_steward_env, data_dir=data_dir)
    try:
        stored = second.conversation(conversation_id)
        assert [(m["role"], m["content"]) for m in stored["messages"]] == [
            ("user", "first"),
            ("assistant", "Before the restart."),
            ("user", "second"),
            ("assistant", "Finished during shutdown."),
        ], stored
        llm.script(text("After the restart."))
        history += [{"role": "assistant", "content": "Finished during shutdown."}, {"role": "user", "content": "third"}]
        raw = second.client().chat.completions.with_raw_response.create(
            model="architect", messages=history, extra_headers={CONVERSATION_HEADER: conversation_id}
        )
        assert raw.headers[CONVERSATION_HEADER] == conversation_id
        assert raw.parse().choices[0].message.content == "After the restart."
        assert len(second.conversation(conversation_id)["messages"]) == 6
    finally:
        second.http.close()
        second.proc.stop()
