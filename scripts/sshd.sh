#!/usr/bin/env bash
# Makes a real OpenSSH server available for the SSH tests.
#
#   bash scripts/sshd.sh            # install if needed, start if not running
#   . .ci-state/sshd/env            # SSH_TEST_HOST, SSH_TEST_PORT, SSH_TEST_USER,
#                                   # SSH_TEST_KEY, SSH_TEST_HOST_PUBKEY
#   bash scripts/sshd.sh stop
#   bash scripts/sshd.sh status
#
# The server lives in <repo>/.ci-state/sshd (git-ignored): its own host key,
# a client key pair whose public half is the only line of authorized_keys,
# sshd_config, sshd.pid, sshd.log, port and env. It listens only on
# 127.0.0.1, on port 2222 (or STEWARD_SSHD_PORT) or, when something else has
# that port, the next free one, and accepts only the client key, for the user
# running this script (root on CI). It is this checkout's own sshd, started
# with `-f` on its own config: a system sshd on port 22, if one runs, is
# neither used nor touched.
#
# If /usr/sbin/sshd is missing, the Debian package openssh-server is installed
# with apt-get, with service starts refused (policy-rc.d) so that installing
# does not start a system sshd on port 22.
#
# Progress goes to stderr; the last line on stdout is the path of the env
# file. Idempotent: a running instance is reused; a stale pid file is removed.

set -euo pipefail

readonly HOST=127.0.0.1
readonly PREFERRED_PORT="${STEWARD_SSHD_PORT:-2222}"
readonly SSHD=/usr/sbin/sshd

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly STATE_DIR="$REPO_ROOT/.ci-state"
readonly DIR="$STATE_DIR/sshd"
readonly CONFIG="$DIR/sshd_config"
readonly HOST_KEY="$DIR/host_ed25519_key"
readonly CLIENT_KEY="$DIR/client_ed25519_key"
readonly AUTHORIZED_KEYS="$DIR/authorized_keys"
readonly PID_FILE="$DIR/sshd.pid"
readonly LOG_FILE="$DIR/sshd.log"
readonly PORT_FILE="$DIR/port"
readonly ENV_FILE="$DIR/env"
USER_NAME="$(id -un)"
readonly USER_NAME
PORT=""

log() { printf 'sshd.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

install_sshd() {
    local sudo=() added_policy=""
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 || die "$SSHD is missing and we are not root (and there is no sudo) to apt-get install openssh-server"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 || die "$SSHD is missing and apt-get is not available; install the OpenSSH server"
    log "$SSHD not found; installing the Debian package openssh-server (apt-get)"
    # Refuse service starts while installing, so the package does not start a
    # system sshd on port 22; a policy already in place (Docker images have
    # one) is left as it is.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        ${sudo[@]+"${sudo[@]}"} sh -c 'printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
        added_policy=1
    fi
    local rc=0
    {
        ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server
    } >&2 || rc=$?
    if [ -n "$added_policy" ]; then
        ${sudo[@]+"${sudo[@]}"} rm -f /usr/sbin/policy-rc.d
    fi
    [ "$rc" -eq 0 ] || die "apt-get install openssh-server failed (exit $rc)"
    [ -x "$SSHD" ] || die "openssh-server was installed but $SSHD is still missing"
}

# Does $1 name a live sshd started on this checkout's config? The listener
# rewrites its command line (`sshd: /usr/sbin/sshd -f <config> … [listener]`),
# so the NUL-separated arguments are joined before comparing.
is_our_sshd() {
    local pid="$1" cmdline
    [[ "$pid" =~ ^[0-9]+$ ]] && [ -r "/proc/$pid/cmdline" ] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$SSHD -f $CONFIG "* ]]
}

running_pid() {
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if is_our_sshd "$pid"; then
        printf '%s\n' "$pid"
    fi
}

port_in_use() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# Answers as an SSH server, with our host key?
answers() {
    local scanned
    scanned="$(ssh-keyscan -T 2 -t ed25519 -p "$PORT" "$HOST" 2>/dev/null || true)"
    [ -n "$scanned" ] && [[ "$scanned" == *"$(cut -d' ' -f2 "$HOST_KEY.pub")"* ]]
}

pick_port() {
    local port="$PREFERRED_PORT"
    while port_in_use "$port"; do
        port=$((port + 1))
        [ "$port" -le $((PREFERRED_PORT + 100)) ] || die "no free port in $PREFERRED_PORT–$((PREFERRED_PORT + 100)) on $HOST"
    done
    PORT="$port"
}

make_keys() {
    if [ ! -s "$HOST_KEY" ] || [ ! -s "$HOST_KEY.pub" ]; then
        rm -f "$HOST_KEY" "$HOST_KEY.pub"
        ssh-keygen -q -t ed25519 -N '' -C "steward-test-sshd" -f "$HOST_KEY" >/dev/null
        log "made the host key $HOST_KEY"
    fi
    if [ ! -s "$CLIENT_KEY" ] || [ ! -s "$CLIENT_KEY.pub" ]; then
        rm -f "$CLIENT_KEY" "$CLIENT_KEY.pub"
        ssh-keygen -q -t ed25519 -N '' -C "steward-test-client" -f "$CLIENT_KEY" >/dev/null
        log "made the client key $CLIENT_KEY"
    fi
    # ssh refuses a private key that others can read.
    chmod 600 "$HOST_KEY" "$CLIENT_KEY"
    cp "$CLIENT_KEY.pub" "$AUTHORIZED_KEYS"
    chmod 600 "$AUTHORIZED_KEYS"
}

write_config() {
    cat >"$CONFIG" <<EOF
# Written by scripts/sshd.sh; changes are overwritten.
ListenAddress $HOST
Port $PORT
HostKey $HOST_KEY
PidFile $PID_FILE
AuthorizedKeysFile $AUTHORIZED_KEYS
AllowUsers $USER_NAME
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
# No PAM: nothing of /etc/pam.d is needed, and no session is set up.
UsePAM no
# The checkout may be group- or world-readable (a container's bind mount);
# the keys here are test keys for a loopback-only server.
StrictModes no
AllowAgentForwarding no
AllowTcpForwarding no
X11Forwarding no
PermitTunnel no
PrintMotd no
PrintLastLog no
# The test suites connect many times at once; the default (10:30:100) would
# drop connections at random past ten unauthenticated ones.
MaxStartups 200
MaxSessions 50
LoginGraceTime 30
LogLevel VERBOSE
EOF
}

start_sshd() {
    local i
    pick_port
    make_keys
    write_config
    echo "$PORT" >"$PORT_FILE"
    # The privilege separation directory sshd insists on.
    if is_root; then
        mkdir -p /run/sshd
        chmod 755 /run/sshd
    fi
    "$SSHD" -t -f "$CONFIG" || die "sshd refuses $CONFIG (see above)"
    rm -f "$PID_FILE"
    # sshd daemonises; -E keeps its log in the state directory.
    "$SSHD" -f "$CONFIG" -E "$LOG_FILE"
    for ((i = 0; i < 50; i++)); do
        if [ -n "$(running_pid)" ] && answers; then
            log "started sshd (pid $(running_pid)) on $HOST:$PORT"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$LOG_FILE" >&2 2>/dev/null || true
    die "sshd did not answer on $HOST:$PORT within 5 s; its log is $LOG_FILE"
}

stop_sshd() {
    local pid i
    pid="$(running_pid)"
    if [ -z "$pid" ]; then
        log "not running"
        rm -f "$PID_FILE"
        return 0
    fi
    log "stopping sshd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
    done
    if [ -d "/proc/$pid" ]; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE"
    log "stopped"
}

write_env() {
    local host_pubkey
    host_pubkey="$(cut -d' ' -f1,2 "$HOST_KEY.pub")"
    # Shell-quoted, so that `. env` works (the host key line has a space).
    {
        printf 'SSH_TEST_HOST=%q\n' "$HOST"
        printf 'SSH_TEST_PORT=%q\n' "$PORT"
        printf 'SSH_TEST_USER=%q\n' "$USER_NAME"
        printf 'SSH_TEST_KEY=%q\n' "$CLIENT_KEY"
        printf 'SSH_TEST_HOST_PUBKEY=%q\n' "$host_pubkey"
    } >"$ENV_FILE"
}

status() {
    local pid
    pid="$(running_pid)"
    if [ -z "$pid" ]; then
        log "not running"
        return 1
    fi
    PORT="$(cat "$PORT_FILE" 2>/dev/null || true)"
    if [ -n "$PORT" ] && answers; then
        log "running (pid $pid) on $HOST:$PORT"
        return 0
    fi
    log "running (pid $pid) but not answering on $HOST:${PORT:-?}; restart with: $0 stop && $0"
    return 1
}

# --- Main -------------------------------------------------------------------

command="${1:-start}"
case "$command" in
start | stop | status) ;;
*) die "unknown command '$command' (use start, stop or status)" ;;
esac

mkdir -p "$DIR"
chmod 700 "$DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE_DIR/sshd.lock"
    flock -w 120 9 || die "timed out waiting for another scripts/sshd.sh run"
fi

case "$command" in
status)
    status
    exit $?
    ;;
stop)
    stop_sshd
    exit 0
    ;;
esac

[ -x "$SSHD" ] || install_sshd
command -v ssh-keygen >/dev/null 2>&1 || die "ssh-keygen is missing; install openssh-client"

if [ -n "$(running_pid)" ]; then
    PORT="$(cat "$PORT_FILE" 2>/dev/null || true)"
    if [ -n "$PORT" ] && answers; then
        log "already running (pid $(running_pid)) on $HOST:$PORT"
    else
        log "sshd (pid $(running_pid)) does not answer; restarting it"
        stop_sshd
        start_sshd
    fi
else
    if [ -e "$PID_FILE" ]; then
        log "removing the stale pid file $PID_FILE"
        rm -f "$PID_FILE"
    fi
    start_sshd
fi
write_env
printf '%s\n' "$ENV_FILE"
