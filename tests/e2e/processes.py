"""Starting and stopping the processes the end-to-end suite talks to:
the scripted model server and `steward serve` instances."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import openai

REPO_ROOT = Path(__file__).resolve().parents[2]

# Environment variables that would configure Steward behind the suite's back.
_DROPPED_PREFIXES = ("OPENAI_", "OLLAMA_", "STEWARD_")
_DROPPED_NAMES = {"DATABASE_URL", "API_PORT", "LOG_LEVEL", "LOG_FORMAT"}

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

# Every running process started by this suite, for logs on failure and cleanup.
RUNNING: list["Proc"] = []
# The processes started during the current test (stopped ones too), whose
# logs a failure report shows.
STARTED_IN_TEST: list["Proc"] = []


def _binary(env_name: str, default_name: str) -> Path:
    value = os.environ.get(env_name)
    path = Path(value) if value else REPO_ROOT / "target" / "debug" / default_name
    if not path.is_file() or not os.access(path, os.X_OK):
        raise RuntimeError(
            f"{path} is missing or not executable (set {env_name}, or build it with "
            "`cargo build -p steward -p steward-testkit --bins` in the repository root)"
        )
    return path


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """os.environ without anything that configures Steward, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(_DROPPED_PREFIXES) and k not in _DROPPED_NAMES
    }
    # Local traffic must never go through a proxy (reqwest honours these).
    for name in ("NO_PROXY", "no_proxy"):
        env[name] = ",".join(filter(None, [env.get(name), "127.0.0.1", "localhost"]))
    env["RUST_BACKTRACE"] = "1"
    env.update(extra or {})
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process whose stdout and stderr go to files."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], workdir: Path):
        self.name = name
        self.argv = argv
        self.workdir = workdir
        self.stdout_path = workdir / f"{name}.stdout.log"
        self.stderr_path = workdir / f"{name}.stderr.log"
        self._stdout = open(self.stdout_path, "wb")
        self._stderr = open(self.stderr_path, "wb")
        self.popen = subprocess.Popen(
            argv,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
        )
        RUNNING.append(self)
        STARTED_IN_TEST.append(self)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def logs(self, max_lines: int = 150) -> str:
        lines = _ANSI.sub("", self.stderr()).splitlines()
        head = f"$ {' '.join(self.argv)}\n(exit status: {self.popen.poll()})\n"
        if len(lines) > max_lines:
            head += f"... {len(lines) - max_lines} earlier lines omitted ...\n"
            lines = lines[-max_lines:]
        return head + "\n".join(lines)

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._stdout.close()
        self._stderr.close()
        if self in RUNNING:
            RUNNING.remove(self)


class ScriptedLlm:
    """The scripted model server and its admin API."""

    def __init__(self, proc: Proc, url: str):
        self.proc = proc
        self.url = url  # http://127.0.0.1:PORT
        self.base_url = f"{url}/v1"
        self.http = httpx.Client(base_url=url, timeout=10, trust_env=False)

    def reset(self) -> None:
        r = self.http.post("/_reset")
        assert r.status_code == 200, r.text

    def script(self, *replies: dict[str, Any]) -> None:
        r = self.http.post("/_script", json=list(replies))
        assert r.status_code == 200, r.text

    def set_default(self, reply: dict[str, Any] | None) -> None:
        r = self.http.post("/_default", json=reply)
        assert r.status_code == 200, r.text

    def requests(self) -> list[dict[str, Any]]:
        r = self.http.get("/_requests")
        assert r.status_code == 200, r.text
        return r.json()

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["path"].startswith("/v1/chat/completions")]

    def remaining_script(self) -> int:
        # /_script with an empty array adds nothing and reports the queue length.
        r = self.http.post("/_script", json=[])
        assert r.status_code == 200, r.text
        return r.json()["queued"]


class Steward:
    """One `steward serve` process."""

    def __init__(self, proc: Proc, url: str, data_dir: Path):
        self.proc = proc
        self.url = url  # http://127.0.0.1:PORT
        self.data_dir = data_dir
        self.http = httpx.Client(base_url=url, timeout=30, trust_env=False)

    def fresh_http(self) -> httpx.Client:
        """A client of its own, for requests Steward may answer before it
        reads their body: such a connection must not go back to a shared
        pool (see test_keepalive.py)."""
        return httpx.Client(base_url=self.url, timeout=30, trust_env=False)

    def client(self, api_key: str = "sk-anything", **kwargs: Any) -> openai.OpenAI:
        """An official SDK client for this server, without retries."""
        return openai.OpenAI(
            base_url=f"{self.url}/v1",
            api_key=api_key,
            max_retries=0,
            timeout=30,
            http_client=openai.DefaultHttpxClient(trust_env=False),
            **kwargs,
        )

    def conversation(self, conversation_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
        r = self.http.get(f"/api/conversations/{conversation_id}", headers=headers)
        assert r.status_code == 200, f"{r.status_code} {r.text}\n{self.proc.logs()}"
        return r.json()


def steward_binary() -> Path:
    return _binary("STEWARD_BIN", "steward")


def start_scripted(workdir: Path) -> ScriptedLlm:
    binary = _binary("SCRIPTED_LLM_BIN", "steward-scripted-llm")
    proc = Proc("scripted-llm", [str(binary), "--port", "0"], clean_env(), workdir)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        out = proc.stdout()
        if out.endswith("\n") or "\n" in out:
            line = out.splitlines()[0].strip()
            assert line.startswith("listening http://127.0.0.1:"), f"unexpected first line {line!r}\n{proc.logs()}"
            scripted = ScriptedLlm(proc, line.split(" ", 1)[1])
            scripted.reset()
            return scripted
        if not proc.alive():
            break
        time.sleep(0.02)
    proc.stop()
    raise RuntimeError(f"the scripted LLM did not announce its address\n{proc.logs()}")


def start_steward(
    name: str,
    workdir: Path,
    env_extra: dict[str, str],
    toml: str | None = None,
    data_dir: Path | None = None,
) -> Steward:
    """Starts `steward serve` and waits for /health; the caller stops it."""
    binary = steward_binary()
    last_logs = ""
    for _attempt in range(3):  # a picked port may be taken in between: retry
        home = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
        data = data_dir or home / "data"
        if toml is not None:
            # Steward reads ./steward.toml from its working directory.
            (home / "steward.toml").write_text(toml)
        port = free_port()
        env = clean_env({"LOG_LEVEL": "info", **env_extra})
        argv = [str(binary), "serve", "--port", str(port), "--data-dir", str(data)]
        proc = Proc(name, argv, env, home)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        with httpx.Client(timeout=2, trust_env=False) as http:
            while time.monotonic() < deadline and proc.alive():
                try:
                    if http.get(f"{url}/health").status_code == 200:
                        return Steward(proc, url, data)
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        last_logs = proc.logs()
        proc.stop()
    raise RuntimeError(f"steward ({name}) did not become healthy\n{last_logs}")
