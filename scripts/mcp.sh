#!/usr/bin/env bash
# Makes the real MCP servers the tests talk to available, without any network
# access at test time.
#
#   bash scripts/mcp.sh        # install if needed; prints the entry scripts
#
# The servers are the reference ones from npm, pinned in tests/mcp/package.json
# and, with every transitive dependency and its integrity hash, in
# tests/mcp/package-lock.json:
#   @modelcontextprotocol/server-everything   (stdio, or `streamableHttp` with PORT)
#   @modelcontextprotocol/server-filesystem   (stdio; its arguments are the allowed roots)
# `npm ci` installs exactly the lock into <repo>/.ci-state/mcp-servers, with
# npm's cache in .ci-state/npm-cache; nothing is written outside the
# repository. Idempotent: an install made from the same lock is reused.
#
# Progress goes to stderr. The last two lines on stdout are the entry scripts,
# run with `node <path>`:
#   STEWARD_TEST_MCP_EVERYTHING=<path>
#   STEWARD_TEST_MCP_FILESYSTEM=<path>

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly SOURCE_DIR="$REPO_ROOT/tests/mcp"
readonly STATE_DIR="$REPO_ROOT/.ci-state"
readonly PREFIX="$STATE_DIR/mcp-servers"
readonly MARKER="$PREFIX/.steward-installed"
export npm_config_cache="$STATE_DIR/npm-cache"
export npm_config_update_notifier=false
export npm_config_fund=false
export npm_config_audit=false

log() { printf 'mcp.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

command -v node >/dev/null 2>&1 || die "node is not installed (Node.js 20 or newer is needed: apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die "npm is not installed (apt-get install npm)"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 20 ] || die "node $(node --version) is too old; the MCP servers need Node.js 20 or newer"

# The entry script of an installed package: its package.json's bin.
entry() {
    local dir="$PREFIX/node_modules/$1"
    [ -f "$dir/package.json" ] || return 1
    node -e '
        const dir = process.argv[1];
        const bin = require(dir + "/package.json").bin;
        const rel = typeof bin === "string" ? bin : Object.values(bin || {})[0];
        if (!rel || !require("node:fs").existsSync(dir + "/" + rel)) process.exit(1);
        console.log(require("node:path").join(dir, rel));
    ' "$dir"
}

installed() {
    [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$want" ] &&
        entry @modelcontextprotocol/server-everything >/dev/null &&
        entry @modelcontextprotocol/server-filesystem >/dev/null
}

# The digest of the pins names the install: a changed pin reinstalls, an
# unchanged one is reused.
want=$(cat "$SOURCE_DIR/package.json" "$SOURCE_DIR/package-lock.json" | sha256sum | cut -d' ' -f1)
if installed; then
    log "MCP servers already installed in $PREFIX"
else
    started=$(date +%s)
    log "installing the MCP servers into $PREFIX (npm ci)"
    rm -rf "$PREFIX"
    mkdir -p "$PREFIX"
    cp "$SOURCE_DIR/package.json" "$SOURCE_DIR/package-lock.json" "$PREFIX/"
    # --ignore-scripts: none of these packages needs an install script, so
    # none is run.
    (cd "$PREFIX" && npm ci --ignore-scripts --no-progress --loglevel=error >&2) ||
        die "npm ci failed in $PREFIX; is the npm registry reachable?"
    printf '%s\n' "$want" >"$MARKER"
    installed || die "the install in $PREFIX lacks a server's entry script; remove $PREFIX and run again"
    log "installed in $(($(date +%s) - started))s"
fi

echo "STEWARD_TEST_MCP_EVERYTHING=$(entry @modelcontextprotocol/server-everything)"
echo "STEWARD_TEST_MCP_FILESYSTEM=$(entry @modelcontextprotocol/server-filesystem)"
