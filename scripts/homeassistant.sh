#!/usr/bin/env bash
# Makes a real Home Assistant available for the tests.
#
#   bash scripts/homeassistant.sh            # install if needed, start if not running
#   . .ci-state/ha/env                       # HA_URL and HA_TOKEN (a long-lived access token)
#   STEWARD_TEST_HA_URL=$HA_URL STEWARD_TEST_HA_TOKEN=$HA_TOKEN STEWARD_REQUIRE_HA=1 \
#       cargo nextest run -p steward-integrations
#
#   bash scripts/homeassistant.sh restart    # stop and start again (the reconnection test uses it)
#   bash scripts/homeassistant.sh stop
#   bash scripts/homeassistant.sh status
#
# Home Assistant Core ($HA_VERSION, pinned: the newest release whose
# requires-python accepts the Python 3.13.0 this machine has) is installed from
# PyPI into <repo>/.ci-state/ha-venv with Home Assistant's own
# package_constraints.txt, together with the requirements of exactly the
# integrations it is configured to load (found by walking their manifests), so
# it never installs anything itself at start-up. pip's cache is kept in
# .ci-state/pip-cache. Nothing is written outside the repository.
#
# The instance lives in .ci-state/ha: config/ (configuration.yaml is rewritten
# on every start; .storage/ keeps the user and its tokens), home-assistant.log,
# hass.pid, port, and env. It listens only on 127.0.0.1, on port 58123 (or
# STEWARD_HA_PORT) or, when something else has that port (another checkout's
# instance, say), the next free one. It runs the `demo` integration (a
# simulated house) with the recorder, history, logbook, system log, automation
# editor and config APIs, and nothing that reaches the internet. On first
# start a user is created through the onboarding API and a long-lived access
# token is made for it; HA_URL and HA_TOKEN are written to .ci-state/ha/env.
#
# Progress and timings go to stderr; the last line on stdout is the path of the
# env file. Idempotent: an installed venv and a running instance are reused.

set -euo pipefail

readonly HA_VERSION=2025.4.4
readonly HOST=127.0.0.1
readonly PREFERRED_PORT="${STEWARD_HA_PORT:-58123}"
# Set once the port is known (see resolve_port).
HA_PORT=""
URL=""
# The onboarding user. Test credentials for a loopback-only instance.
readonly HA_USER=steward
readonly HA_PASSWORD=steward-test-password
# The integrations configuration.yaml names (besides `homeassistant:`).
readonly INTEGRATIONS="http logger demo recorder history logbook system_log config api websocket_api automation"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly STATE_DIR="$REPO_ROOT/.ci-state"
readonly VENV="$STATE_DIR/ha-venv"
readonly DIST_DIR="$STATE_DIR/ha-dist"
readonly HA_DIR="$STATE_DIR/ha"
readonly CONFIG_DIR="$HA_DIR/config"
readonly LOG_FILE="$HA_DIR/home-assistant.log"
readonly OUT_FILE="$HA_DIR/hass.out"
readonly PID_FILE="$HA_DIR/hass.pid"
readonly PORT_FILE="$HA_DIR/port"
readonly ENV_FILE="$HA_DIR/env"
readonly MARKER="$VENV/.steward-installed"
export PIP_CACHE_DIR="$STATE_DIR/pip-cache"
export PIP_DISABLE_PIP_VERSION_CHECK=1

T_START=$(date +%s)
log() { printf 'homeassistant.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}
elapsed() { echo "$(($(date +%s) - $1))s"; }

# --- Python 3.13 ------------------------------------------------------------

# Home Assistant $HA_VERSION needs Python >= 3.13. The first python3.13 found.
find_python() {
    local candidate
    for candidate in "${STEWARD_HA_PYTHON:-}" "$(command -v python3.13 || true)" \
        "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13*/bin/python3.13 /usr/local/bin/python3.13 /usr/bin/python3.13; do
        if [ -z "$candidate" ] || [ ! -x "$candidate" ]; then continue; fi
        if "$candidate" -c 'import sys, venv; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    return 1
}

# --- Install ----------------------------------------------------------------

# What an install is made of; a change re-runs the install.
install_key() { printf '%s %s\n' "$HA_VERSION" "$INTEGRATIONS"; }

installed() {
    [ -x "$VENV/bin/hass" ] && [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$(install_key)" ]
}

install_ha() {
    local t0 python wheel constraints
    t0=$(date +%s)
    python="$(find_python)" ||
        die "Home Assistant $HA_VERSION needs Python 3.13 and none was found (looked for python3.13 on PATH and under ~/.pyenv/versions/3.13*); install it (e.g. pyenv install 3.13) or set STEWARD_HA_PYTHON to its path"
    log "installing Home Assistant $HA_VERSION into $VENV with $python"
    rm -rf "$VENV"
    "$python" -m venv "$VENV"
    mkdir -p "$DIST_DIR" "$PIP_CACHE_DIR"

    # The wheel carries Home Assistant's constraints file; fetch it first so
    # the core install is already constrained.
    wheel="$(find "$DIST_DIR" -maxdepth 1 -name "homeassistant-$HA_VERSION-*.whl" | head -n 1)"
    if [ -z "$wheel" ]; then
        "$VENV/bin/pip" download --quiet --no-deps --only-binary=:all: -d "$DIST_DIR" "homeassistant==$HA_VERSION" >&2
        wheel="$(find "$DIST_DIR" -maxdepth 1 -name "homeassistant-$HA_VERSION-*.whl" | head -n 1)"
        [ -n "$wheel" ] || die "pip downloaded no wheel for homeassistant==$HA_VERSION"
    fi
    constraints="$DIST_DIR/package_constraints-$HA_VERSION.txt"
    "$VENV/bin/python" - "$wheel" "$constraints" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel:
    data = wheel.read("homeassistant/package_constraints.txt")
with open(sys.argv[2], "wb") as out:
    out.write(data)
PY
    "$VENV/bin/pip" install --quiet -c "$constraints" "$wheel" >&2
    log "Home Assistant core installed in $(elapsed "$t0")"

    # The requirements of the integrations this instance loads: those
    # configured, those Home Assistant always loads, the platforms of the
    # demo integration, and everything they depend on.
    local t1 requirements="$DIST_DIR/requirements-$HA_VERSION.txt"
    t1=$(date +%s)
    # shellcheck disable=SC2086
    "$VENV/bin/python" - $INTEGRATIONS >"$requirements" <<'PY'
import json, os, sys

import homeassistant
from homeassistant import bootstrap
from homeassistant.components import demo

components = os.path.join(os.path.dirname(homeassistant.__file__), "components")

def manifest(domain):
    with open(os.path.join(components, domain, "manifest.json")) as f:
        return json.load(f)

wanted = set(sys.argv[1:]) | bootstrap.CORE_INTEGRATIONS | bootstrap.DEFAULT_INTEGRATIONS
wanted |= bootstrap.LOGGING_AND_HTTP_DEPS_INTEGRATIONS & set(sys.argv[1:])
wanted |= {"frontend", "recorder", "system_log", "logger", "network"}
wanted |= {str(p) for p in demo.COMPONENTS_WITH_CONFIG_ENTRY_DEMO_PLATFORM}
wanted |= {str(p) for p in demo.COMPONENTS_WITH_DEMO_PLATFORM}
# What the demo sets up itself once it runs.
wanted |= {"sun", "input_select", "input_boolean", "input_button", "input_number", "script", "scene"}
seen, todo = set(), list(wanted)
while todo:
    domain = todo.pop()
    if domain not in seen:
        seen.add(domain)
        todo.extend(manifest(domain).get("dependencies", []))
requirements = sorted({r for d in seen for r in manifest(d).get("requirements", [])})
print(f"{len(seen)} integrations, {len(requirements)} requirements", file=sys.stderr)
print("\n".join(requirements))
PY
    if [ -s "$requirements" ]; then
        "$VENV/bin/pip" install --quiet -c "$constraints" -r "$requirements" >&2
    fi
    log "integration requirements installed in $(elapsed "$t1")"
    install_key >"$MARKER"
    log "install took $(elapsed "$t0") ($(du -sh "$VENV" | cut -f1) in $VENV)"
}

# --- The instance -----------------------------------------------------------

write_config() {
    mkdir -p "$CONFIG_DIR"
    cat >"$CONFIG_DIR/configuration.yaml" <<YAML
# Written by scripts/homeassistant.sh; changes are overwritten.
homeassistant:
  name: Steward Test Home
  latitude: 52.37
  longitude: 4.89
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: NL
  language: en
http:
  server_host: $HOST
  server_port: $HA_PORT
logger:
  default: warning
demo:
recorder:
  # Write states to the database every second, so history is there at once.
  commit_interval: 1
history:
logbook:
system_log:
config:
api:
websocket_api:
automation: !include automations.yaml
YAML
    [ -f "$CONFIG_DIR/automations.yaml" ] || echo '[]' >"$CONFIG_DIR/automations.yaml"
}

# Does $1 name a live Home Assistant of this checkout? (Its arguments are
# compared one by one: a grep for the same words must not count.)
is_our_hass() {
    local pid="$1" args i
    [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
    mapfile -d '' args <"/proc/$pid/cmdline" 2>/dev/null || return 1
    for ((i = 0; i + 2 < ${#args[@]}; i++)); do
        if [[ "${args[i]}" == */bin/hass ]] && [ "${args[i + 1]}" = "-c" ] && [ "${args[i + 2]}" = "$CONFIG_DIR" ]; then
            return 0
        fi
    done
    return 1
}

running_pid() {
    local pid dir
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if is_our_hass "$pid"; then
        printf '%s\n' "$pid"
        return 0
    fi
    # The pid file may be gone while the process is not.
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        if is_our_hass "$pid"; then
            echo "$pid" >"$PID_FILE"
            printf '%s\n' "$pid"
            return 0
        fi
    done
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }
port_open() { port_in_use "$HA_PORT"; }

# The port of a running instance is in the port file; a new instance takes
# the port it had before if free, else the preferred port, or the next free
# one when something else (another checkout's Home Assistant, say) has it.
resolve_port() {
    local port
    if [ -n "$(running_pid)" ]; then
        HA_PORT="$(cat "$PORT_FILE" 2>/dev/null || sed -n 's/^  server_port: //p' "$CONFIG_DIR/configuration.yaml")"
        [ -n "$HA_PORT" ] || die "cannot tell which port the running Home Assistant uses; stop it with: $0 stop"
    else
        HA_PORT=""
        # A restart keeps the port it had, so clients find it again.
        for port in $(cat "$PORT_FILE" 2>/dev/null || true) $(seq "$PREFERRED_PORT" $((PREFERRED_PORT + 50))); do
            if ! port_in_use "$port"; then
                HA_PORT="$port"
                break
            fi
            log "port $port is taken by something else; trying the next"
        done
        [ -n "$HA_PORT" ] || die "no free port in $PREFERRED_PORT-$((PREFERRED_PORT + 50)) on $HOST; set STEWARD_HA_PORT"
    fi
    URL="http://${HOST}:${HA_PORT}"
    echo "$HA_PORT" >"$PORT_FILE"
}

stop_ha() {
    local pid t0
    pid="$(running_pid)"
    if [ -z "$pid" ]; then
        log "not running"
        rm -f "$PID_FILE"
        return 0
    fi
    t0=$(date +%s)
    HA_PORT="$(cat "$PORT_FILE" 2>/dev/null || sed -n 's/^  server_port: //p' "$CONFIG_DIR/configuration.yaml")"
    log "stopping Home Assistant (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 120); do
        [ -d "/proc/$pid" ] || break
        sleep 0.5
    done
    if [ -d "/proc/$pid" ]; then
        log "still running after 60s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    for _ in $(seq 1 40); do
        if [ -z "$HA_PORT" ] || ! port_open; then break; fi
        sleep 0.25
    done
    rm -f "$PID_FILE"
    log "stopped in $(elapsed "$t0")"
}

start_ha() {
    local t0 pid
    t0=$(date +%s)
    resolve_port
    write_config
    log "starting Home Assistant (log: $LOG_FILE)"
    # setsid: it must outlive this script and the test run that started it;
    # 9>&-: it must not hold our lock.
    setsid "$VENV/bin/hass" -c "$CONFIG_DIR" --log-file "$LOG_FILE" --log-rotate-days 1 \
        </dev/null >"$OUT_FILE" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    for _ in $(seq 1 240); do
        port_open && break
        [ -d "/proc/$pid" ] || {
            tail -n 30 "$OUT_FILE" >&2 || true
            die "Home Assistant exited during start-up; see $LOG_FILE and $OUT_FILE"
        }
        sleep 0.5
    done
    port_open || die "Home Assistant did not open $HOST:$HA_PORT within 120s; see $LOG_FILE"
    log "listening after $(elapsed "$t0")"
}

# Onboards (first start) or logs in, makes a long-lived access token if the
# env file has none that works, and waits until Home Assistant is running
# with the demo house loaded.
onboard_and_wait() {
    local t0
    t0=$(date +%s)
    "$VENV/bin/python" - "$URL" "$ENV_FILE" "$HA_USER" "$HA_PASSWORD" <<'PY'
import asyncio, json, os, sys, time

import aiohttp

url, env_file, user, password = sys.argv[1:5]
client_id = url + "/"

def say(msg):
    print(f"homeassistant.sh: {msg}", file=sys.stderr, flush=True)

def read_env():
    try:
        with open(env_file) as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line)
    except FileNotFoundError:
        return {}

async def token_works(session, token):
    try:
        async with session.get(f"{url}/api/", headers={"Authorization": f"Bearer {token}"}) as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False

async def until(what, attempt, timeout=180):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = await attempt()
            if result:
                return result
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError, KeyError) as e:
            last = e
        await asyncio.sleep(0.5)
    raise SystemExit(f"homeassistant.sh: error: {what} timed out after {timeout}s (last error: {last!r})")

# Only onboarding's user step is done: the later steps (core_config,
# integration) set up integrations that reach the internet (weather, radio
# stations, text-to-speech), which a test instance must not.
async def auth_code(session):
    async with session.get(f"{url}/api/onboarding") as r:
        steps = await r.json() if r.status == 200 else []
    if any(s["step"] == "user" and not s["done"] for s in steps):
        say("onboarding: creating the user")
        body = {"client_id": client_id, "name": "Steward Tests", "username": user,
                "password": password, "language": "en"}
        async with session.post(f"{url}/api/onboarding/users", json=body) as r:
            r.raise_for_status()
            return (await r.json())["auth_code"]
    say("logging in")
    body = {"client_id": client_id, "handler": ["homeassistant", None], "redirect_uri": client_id}
    async with session.post(f"{url}/auth/login_flow", json=body) as r:
        r.raise_for_status()
        flow = await r.json()
    body = {"client_id": client_id, "username": user, "password": password}
    async with session.post(f"{url}/auth/login_flow/{flow['flow_id']}", json=body) as r:
        r.raise_for_status()
        result = await r.json()
    if result.get("type") != "create_entry":
        raise SystemExit(f"homeassistant.sh: error: login as {user} failed ({result.get('errors')}); "
                         "delete .ci-state/ha to start over")
    return result["result"]

async def long_lived_token(session, access):
    async with session.ws_connect(f"{url}/api/websocket") as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": access})
        reply = await ws.receive_json()
        if reply["type"] != "auth_ok":
            raise SystemExit(f"homeassistant.sh: error: WebSocket auth failed: {reply}")
        await ws.send_json({"id": 1, "type": "auth/long_lived_access_token",
                            "client_name": "steward tests", "lifespan": 3650})
        reply = await ws.receive_json()
        if not reply.get("success"):
            raise SystemExit(f"homeassistant.sh: error: creating a long-lived token failed: {reply}")
        return reply["result"]

async def main():
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await until("waiting for the HTTP API", lambda: session_ok(session))
        token = read_env().get("HA_TOKEN")
        if not token or not await token_works(session, token):
            code = await until("getting an authorization code", lambda: auth_code(session), 60)
            form = {"grant_type": "authorization_code", "code": code, "client_id": client_id}
            async with session.post(f"{url}/auth/token", data=form) as r:
                r.raise_for_status()
                access = (await r.json())["access_token"]
            token = await long_lived_token(session, access)
            say("made a long-lived access token")
        # Written every time: the port may have changed since.
        content = f"HA_URL={url}\nHA_TOKEN={token}\n"
        if read_env() != {"HA_URL": url, "HA_TOKEN": token}:
            tmp = env_file + ".tmp"
            with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(content)
            os.replace(tmp, env_file)
            say(f"wrote HA_URL and HA_TOKEN to {env_file}")
        headers = {"Authorization": f"Bearer {token}"}

        async def running():
            async with session.get(f"{url}/api/config", headers=headers) as r:
                if r.status != 200 or (await r.json()).get("state") != "RUNNING":
                    return False
            async with session.get(f"{url}/api/states", headers=headers) as r:
                states = await r.json()
            return sum(s["entity_id"].startswith("light.") for s in states) >= 2 and len(states)

        count = await until("waiting for Home Assistant to finish starting", running)
        say(f"running with {count} entities")

async def session_ok(session):
    async with session.get(f"{url}/api/onboarding") as r:
        return r.status in (200, 401, 404)

asyncio.run(main())
PY
    log "ready in $(elapsed "$t0") more"
}

status() {
    local pid
    pid="$(running_pid)"
    if [ -n "$pid" ]; then
        resolve_port
        log "running (pid $pid) at $URL; env: $ENV_FILE"
    else
        log "not running"
        return 1
    fi
}

# --- Main -------------------------------------------------------------------

command="${1:-start}"
case "$command" in
start | restart | stop | status) ;;
*) die "unknown command '$command' (use start, restart, stop or status)" ;;
esac

mkdir -p "$HA_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE_DIR/ha.lock"
    flock -w 600 9 || die "timed out waiting for another scripts/homeassistant.sh run"
fi

case "$command" in
status)
    status
    exit $?
    ;;
stop)
    stop_ha
    exit 0
    ;;
restart)
    stop_ha
    ;;
esac

if ! installed; then
    install_ha
else
    log "Home Assistant $HA_VERSION already installed in $VENV"
fi

if [ -n "$(running_pid)" ]; then
    resolve_port
    log "already running (pid $(running_pid)) at $URL"
else
    rm -f "$PID_FILE"
    start_ha
fi
onboard_and_wait
log "Home Assistant $HA_VERSION is ready at $URL ($(elapsed "$T_START") in all)"
printf '%s\n' "$ENV_FILE"
