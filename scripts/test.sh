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
