#!/usr/bin/env bash
# Makes a real ansible-core available for the Ansible tests.
#
#   bash scripts/ansible.sh                  # install if needed; prints the path of ansible-playbook
#   STEWARD_TEST_ANSIBLE_PLAYBOOK=$(bash scripts/ansible.sh | tail -n 1) STEWARD_REQUIRE_ANSIBLE=1 \
#       cargo nextest run -p steward-integrations -p steward-server ansible
#
# ansible-core $ANSIBLE_VERSION (pinned: the last 2.17 release, whose controller
# runs on Python 3.10–3.12) is installed from PyPI into
# <repo>/.ci-state/ansible-venv, with pip's cache in .ci-state/pip-cache.
# Nothing is written outside the repository, and nothing is started: the tests
# run playbooks against localhost with `connection: local`.
#
# Progress goes to stderr; the last line on stdout is the absolute path of
# ansible-playbook. Idempotent: a venv holding the pinned version is reused.

set -euo pipefail

readonly ANSIBLE_VERSION=2.17.14

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly STATE_DIR="$REPO_ROOT/.ci-state"
readonly VENV="$STATE_DIR/ansible-venv"
readonly MARKER="$VENV/.steward-installed"
readonly LOCK_FILE="$STATE_DIR/ansible.lock"
export PIP_CACHE_DIR="$STATE_DIR/pip-cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log() { printf 'ansible.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

# The first Python 3.10–3.12 with a working venv module: what ansible-core
# $ANSIBLE_VERSION supports on the controller.
find_python() {
    local candidate
    for candidate in "${STEWARD_ANSIBLE_PYTHON:-}" /usr/bin/python3 "$(command -v python3.11 || true)" \
        "$(command -v python3.12 || true)" "$(command -v python3.10 || true)" "$(command -v python3 || true)"; do
        if [ -z "$candidate" ] || [ ! -x "$candidate" ]; then continue; fi
        if "$candidate" -c 'import sys, venv; sys.exit(not ((3, 10) <= sys.version_info[:2] <= (3, 12)))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

installed() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$ANSIBLE_VERSION" ] &&
        "$VENV/bin/ansible-playbook" --version >/dev/null 2>&1
}

install() {
    local python
    python=$(find_python) || die "no Python 3.10, 3.11 or 3.12 found for ansible-core $ANSIBLE_VERSION; install one (apt-get install python3 python3-venv) or point STEWARD_ANSIBLE_PYTHON at one"
    log "installing ansible-core $ANSIBLE_VERSION into $VENV with $python ($("$python" --version 2>&1))"
    rm -rf "$VENV"
    if ! "$python" -m venv "$VENV" >/dev/null 2>&1; then
        # Debian's python3 needs python3-venv (ensurepip) for this.
        rm -rf "$VENV"
        if [ "$python" = /usr/bin/python3 ] && command -v apt-get >/dev/null 2>&1; then
            log "installing python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$VENV"
        else
            die "$python cannot create a virtualenv; install its venv module (apt-get install python3-venv)"
        fi
    fi
    "$VENV/bin/python" -m pip install --quiet "ansible-core==$ANSIBLE_VERSION" ||
        die "pip could not install ansible-core $ANSIBLE_VERSION (is PyPI reachable?)"
    "$VENV/bin/ansible-playbook" --version >/dev/null || die "ansible-playbook does not start after the install"
    echo "$ANSIBLE_VERSION" >"$MARKER"
}

mkdir -p "$STATE_DIR"
# One install at a time when several test runs start together.
exec 9>"$LOCK_FILE"
flock 9
if installed; then
    log "ansible-core $ANSIBLE_VERSION already installed in $VENV"
else
    started=$(date +%s)
    install
    log "installed in $(($(date +%s) - started))s"
fi
echo "$VENV/bin/ansible-playbook"
