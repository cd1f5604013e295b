#!/usr/bin/env bash
# The whole test suite, as a newcomer and CI run it:
#   bash scripts/test.sh
# It installs and starts what the tests need (PostgreSQL from Debian's
# packages, the official `openai` Python SDK and pytest in a virtualenv under
# .venv) and works when they are already there. Nothing is cached outside
# the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*" >&2; }

step "PostgreSQL for the store suite"
STEWARD_TEST_POSTGRES_URL=$(bash scripts/postgres.sh | tail -n 1)
export STEWARD_TEST_POSTGRES_URL
export STEWARD_REQUIRE_POSTGRES=1

# bubblewrap for the analysis-script sandbox (steward-integrations'
# sandbox suite); the sandbox tests must run, not skip.
step "bubblewrap for the sandbox suite"
if ! command -v bwrap >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null
fi
export STEWARD_REQUIRE_SANDBOX=1

# --- Home Assistant for the steward-integrations suite ----------------------
# A real Home Assistant Core (PyPI, venv under .ci-state) running the demo
# integration on 127.0.0.1 (port 58123, or the next free one); the suite's
# Home Assistant half must run, not skip.
step "Home Assistant for the integration suite"
ha_started=$(date +%s)
HA_ENV_FILE=$(bash scripts/homeassistant.sh | tail -n 1)
STEWARD_TEST_HA_URL=$(sed -n 's/^HA_URL=//p' "$HA_ENV_FILE")
STEWARD_TEST_HA_TOKEN=$(sed -n 's/^HA_TOKEN=//p' "$HA_ENV_FILE")
export STEWARD_TEST_HA_URL STEWARD_TEST_HA_TOKEN
export STEWARD_REQUIRE_HA=1
printf 'Home Assistant ready after %ss\n' "$(($(date +%s) - ha_started))" >&2
# --- end of Home Assistant ---------------------------------------------------

# --- MCP servers for the MCP client's suites ----------------------------------
# The reference MCP servers from npm (server-everything, server-filesystem),
# pinned by tests/mcp/package-lock.json and installed with `npm ci` under
# .ci-state; the MCP tests of steward-integrations, steward-server and
# steward must run, not skip.
step "MCP servers for the MCP suites"
MCP_ENV=$(bash scripts/mcp.sh | tail -n 2)
STEWARD_TEST_MCP_EVERYTHING=$(printf '%s\n' "$MCP_ENV" | sed -n 's/^STEWARD_TEST_MCP_EVERYTHING=//p')
STEWARD_TEST_MCP_FILESYSTEM=$(printf '%s\n' "$MCP_ENV" | sed -n 's/^STEWARD_TEST_MCP_FILESYSTEM=//p')
export STEWARD_TEST_MCP_EVERYTHING STEWARD_TEST_MCP_FILESYSTEM
export STEWARD_REQUIRE_MCP=1
# --- end of MCP servers -------------------------------------------------------

# --- sshd for the SSH tools' suites ------------------------------------------
# This checkout's own OpenSSH server on 127.0.0.1 (port 2222 or the next free
# one; openssh-server is apt-installed if missing), state under .ci-state/sshd;
# the SSH tests of steward-integrations and steward-server must run, not skip.
step "sshd for the SSH suites"
SSHD_ENV_FILE=$(bash scripts/sshd.sh | tail -n 1)
# shellcheck disable=SC1090
. "$SSHD_ENV_FILE"
export STEWARD_TEST_SSH_HOST="$SSH_TEST_HOST" STEWARD_TEST_SSH_PORT="$SSH_TEST_PORT"
export STEWARD_TEST_SSH_USER="$SSH_TEST_USER" STEWARD_TEST_SSH_KEY="$SSH_TEST_KEY"
export STEWARD_TEST_SSH_HOST_PUBKEY="$SSH_TEST_HOST_PUBKEY"
export STEWARD_REQUIRE_SSH=1
# --- end of sshd ---------------------------------------------------------------

# --- ansible-core for the Ansible tools' suites -------------------------------
# A pinned ansible-core (PyPI, venv under .ci-state); the Ansible tests of
# steward-integrations and steward-server run playbooks on localhost with
# connection: local and must run, not skip.
step "ansible-core for the Ansible suites"
STEWARD_TEST_ANSIBLE_PLAYBOOK=$(bash scripts/ansible.sh | tail -n 1)
export STEWARD_TEST_ANSIBLE_PLAYBOOK
export STEWARD_REQUIRE_ANSIBLE=1
# --- end of ansible-core ------------------------------------------------------

# Chromium and its WebDriver for the dashboard's browser tests
# (tests/e2e/test_dashboard.py); they must run, not skip.
step "Chromium for the dashboard's browser tests"
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi
export STEWARD_REQUIRE_BROWSER=1

step "Python environment for the end-to-end suite (openai SDK, pytest)"
if [ ! -x .venv/bin/python ]; then
    rm -rf .venv
    if ! python3 -m venv .venv >/dev/null 2>&1; then
        # Debian's python3 needs python3-venv (ensurepip) for this.
        rm -rf .venv
        apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
        python3 -m venv .venv
    fi
fi
.venv/bin/python -m pip install --quiet --no-cache-dir --disable-pip-version-check -r tests/e2e/requirements.txt

if ! command -v cargo-nextest >/dev/null 2>&1; then
    step "installing cargo-nextest"
    cargo install --locked cargo-nextest
fi

step "formatting and lints"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Rust tests (SQLite and PostgreSQL)"
cargo build --workspace --all-targets --locked
cargo nextest run --workspace --locked --no-fail-fast

step "end-to-end tests with the official openai Python SDK"
export STEWARD_BIN="$ROOT/target/debug/steward"
export SCRIPTED_LLM_BIN="$ROOT/target/debug/steward-scripted-llm"
.venv/bin/python -m pytest -q tests/e2e
