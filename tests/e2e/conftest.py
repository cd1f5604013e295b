"""Process fixtures for Steward's end-to-end suite.

The suite starts real processes: one scripted OpenAI-compatible model server
(`steward-scripted-llm`) and several `steward serve` instances pointed at it,
each configured differently (plain, small body limit, API keys, a
steward.toml, no model). They are session-scoped and started on first use;
the logs of the processes a failing test used are attached to its report.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

import processes
from helpers import CLIENT_KEY, SMALL_BODY_LIMIT, UPSTREAM_KEY, sha256_hex
from processes import Proc, ScriptedLlm, Steward, start_scripted, start_steward


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="steward-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def scripted(workdir: Path) -> Iterator[ScriptedLlm]:
    server = start_scripted(workdir)
    yield server
    server.http.close()
    server.proc.stop()


@pytest.fixture()
def llm(scripted: ScriptedLlm) -> ScriptedLlm:
    """The scripted model, reset for this test."""
    scripted.reset()
    return scripted


def _steward_fixture(name: str, workdir: Path, env: dict[str, str], toml: str | None = None) -> Iterator[Steward]:
    server = start_steward(name, workdir, env, toml)
    yield server
    server.http.close()
    server.proc.stop()


@pytest.fixture(scope="session")
def steward(workdir: Path, scripted: ScriptedLlm) -> Iterator[Steward]:
    """Steward pointed at the scripted model, with an upstream key and no auth."""
    yield from _steward_fixture(
        "steward", workdir, {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY}
    )


@pytest.fixture(scope="session")
def steward_small_body(workdir: Path, scripted: ScriptedLlm) -> Iterator[Steward]:
    """Steward refusing request bodies over SMALL_BODY_LIMIT bytes."""
    yield from _steward_fixture(
        "steward-small-body",
        workdir,
        {
            "OPENAI_BASE_URL": scripted.base_url,
            "OPENAI_API_KEY": UPSTREAM_KEY,
            "STEWARD_MAX_BODY_BYTES": str(SMALL_BODY_LIMIT),
        },
    )


@pytest.fixture(scope="session")
def steward_auth(workdir: Path, scripted: ScriptedLlm) -> Iterator[Steward]:
    """Steward accepting only CLIENT_KEY (configured as its SHA-256 digest)."""
    yield from _steward_fixture(
        "steward-auth",
        workdir,
        {
            "OPENAI_BASE_URL": scripted.base_url,
            "OPENAI_API_KEY": UPSTREAM_KEY,
            # A second, unrelated digest checks that the list is comma separated.
            "STEWARD_API_KEYS": f"{sha256_hex('sk-some-other-key')},{sha256_hex(CLIENT_KEY)}",
        },
    )


CONFIGURED_TOML = """
[llm]
request_timeout_secs = 1
retries = 1

[llm.tiers]
fast = ["openai/scripted"]
smart = ["openai/scripted"]

[engine]
max_steps = 3

[agents.energy]
purpose = "Answers questions about energy use."
system_prompt = "You are an energy analyst. Be precise."
tools = ["get_current_time"]
tier = "fast"
"""


@pytest.fixture(scope="session")
def steward_configured(workdir: Path, scripted: ScriptedLlm) -> Iterator[Steward]:
    """Steward with a steward.toml: a 1 s model timeout and no retry on one
    deployment, 3 steps, an extra agent."""
    yield from _steward_fixture(
        "steward-configured",
        workdir,
        {"OPENAI_BASE_URL": scripted.base_url, "OPENAI_API_KEY": UPSTREAM_KEY},
        CONFIGURED_TOML,
    )


@pytest.fixture(scope="session")
def steward_no_llm(workdir: Path) -> Iterator[Steward]:
    """Steward with no language model configured at all."""
    yield from _steward_fixture("steward-no-llm", workdir, {})


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        # The logs of the processes this test used; of all of them when it
        # failed before its fixtures were set up.
        funcargs = getattr(item, "funcargs", {}) or {}
        used = [v.proc for v in funcargs.values() if isinstance(getattr(v, "proc", None), Proc)]
        shown = used + [p for p in processes.STARTED_IN_TEST if p not in used]
        for proc in shown or list(processes.RUNNING):
            report.sections.append((f"{proc.name} stderr ({report.when})", proc.logs()))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    processes.STARTED_IN_TEST.clear()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Fixture teardown stops everything; this is a last resort.
    for proc in list(processes.RUNNING):
        proc.stop()


GATEWAY_TOML = """
[llm]
retries = 1

# The scripted server speaks every wire format; one provider of each kind.
[llm.providers.cloud]
kind = "anthropic"
api_key = "sk-ant-e2e"
local = false

[llm.providers.home]
kind = "ollama"

[llm.tiers]
smart = ["cloud/claude-e2e", "home/llama-e2e"]
fast = ["cloud/claude-e2e"]

[llm.prices."cloud/claude-e2e"]
input = 3.0
output = 15.0

[llm.budgets.providers.cloud]
monthly = 0.00001
"""


@pytest.fixture(scope="session")
def steward_gateway(workdir: Path, scripted: ScriptedLlm) -> Iterator[Steward]:
    """Steward with a paid Anthropic-style provider whose budget is spent and a
    free local Ollama-style one, both answered by the scripted server."""
    toml = GATEWAY_TOML.replace("[llm.providers.cloud]", f'[llm.providers.cloud]\nbase_url = "{scripted.url}"').replace(
        "[llm.providers.home]", f'[llm.providers.home]\nbase_url = "{scripted.url}"'
    )
    yield from _steward_fixture("steward-gateway", workdir, {}, toml)


PAID_ONLY_TOML = """
[llm.providers.cloud]
kind = "anthropic"
api_key = "sk-ant-e2e"
local = false

[llm.prices."cloud/claude-e2e"]
input = 3.0
output = 15.0

[llm.tiers]
smart = ["cloud/claude-e2e"]

[llm.budgets]
daily = 0.00001
"""


@pytest.fixture(scope="session")
def steward_paid_only(workdir: Path, scripted: ScriptedLlm) -> Iterator[Steward]:
    """Steward whose only provider is paid, with a spent overall budget."""
    toml = PAID_ONLY_TOML.replace("[llm.providers.cloud]", f'[llm.providers.cloud]\nbase_url = "{scripted.url}"')
    yield from _steward_fixture("steward-paid-only", workdir, {}, toml)
