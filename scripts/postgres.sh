#!/usr/bin/env bash
# Makes a real PostgreSQL server available for the tests.
#
#   STEWARD_TEST_POSTGRES_URL=$(bash scripts/postgres.sh | tail -1) \
#   STEWARD_REQUIRE_POSTGRES=1 cargo nextest run -p steward-store
#
# The cluster lives in <repo>/.ci-state/pg (git-ignored): data in data/, the
# Unix socket in run/, the server log in postgres.log. It listens only on
# 127.0.0.1:55432. The role `steward` (password `steward`, SUPERUSER so tests
# can CREATE DATABASE) is created if missing.
#
# Progress goes to stderr; the last line on stdout is the URL. Idempotent: if
# the server already answers on the port, this only ensures the role. A stale
# postmaster.pid (e.g. after a container restart) is removed. If no PostgreSQL
# is installed (no initdb under /usr/lib/postgresql/*/bin), the Debian package
# `postgresql` is installed with apt-get. Run as root, the server runs as the
# `postgres` system user (created if missing).
#
# Stop it with: pg_ctl -D .ci-state/pg/data stop   (as the postgres user when root)

set -euo pipefail

readonly HOST=127.0.0.1
readonly PORT=55432
readonly ROLE=steward
readonly PASSWORD=steward
readonly URL="postgres://${ROLE}:${PASSWORD}@${HOST}:${PORT}/postgres"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO_ROOT
readonly STATE_DIR="$REPO_ROOT/.ci-state"
readonly PG_DIR="$STATE_DIR/pg"
readonly DATA_DIR="$PG_DIR/data"
readonly SOCKET_DIR="$PG_DIR/run"
readonly LOG_FILE="$PG_DIR/postgres.log"

log() { printf 'postgres.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# Runs a command as the user that owns the cluster: `postgres` when we are
# root (initdb and postgres refuse to run as root), ourselves otherwise.
as_pg() {
    if is_root; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su -s /bin/sh postgres -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

# The newest PostgreSQL bin directory that has initdb, or nothing.
find_bindir() {
    local dir found=()
    for dir in /usr/lib/postgresql/*/bin; do
        [ -x "$dir/initdb" ] && found+=("$dir")
    done
    [ "${#found[@]}" -gt 0 ] || return 0
    printf '%s\n' "${found[@]}" | sort -V | tail -n 1
}

install_postgres() {
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null 2>&1 || die "PostgreSQL is not installed and we are not root (and there is no sudo) to apt-get install it"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null 2>&1 || die "PostgreSQL is not installed (no initdb under /usr/lib/postgresql/*/bin) and apt-get is not available; install PostgreSQL server binaries"
    log "PostgreSQL not found; installing the Debian package postgresql (apt-get)"
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get update >&2
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
}

# Is the server accepting connections on our port?
server_ready() { "$BINDIR/pg_isready" -q -h "$HOST" -p "$PORT" -t 3 >/dev/null 2>&1; }

# Does $1 name a live postmaster serving our data directory? (A pid from a
# stale postmaster.pid may since belong to an unrelated process.)
is_our_postmaster() {
    local pid="$1" comm cwd
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -d "/proc/$pid" ] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    [ "$comm" = postgres ] || [ "$comm" = postmaster ] || return 1
    cwd="$(readlink -f "/proc/$pid/cwd" 2>/dev/null || true)"
    [ -z "$cwd" ] || [ "$cwd" = "$(readlink -f "$DATA_DIR")" ]
}

# psql as the cluster's superuser through our own socket.
psql_local() {
    as_pg "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U postgres -d postgres "$@"
}

# psql as steward over TCP.
psql_url() {
    PGCONNECT_TIMEOUT=5 "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 "$URL" "$@"
}

ensure_role() {
    # Already usable (possibly a server we did not start)?
    if [ "$(psql_url -tAc 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user' 2>/dev/null || true)" = t ]; then
        log "role $ROLE can log in and is a superuser"
        return 0
    fi
    [ -S "$SOCKET_DIR/.s.PGSQL.$PORT" ] ||
        die "the server on $HOST:$PORT does not accept $ROLE/$PASSWORD and is not this checkout's cluster (no socket in $SOCKET_DIR); stop it or free the port"
    log "ensuring role $ROLE"
    psql_local >&2 <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
        CREATE ROLE $ROLE LOGIN SUPERUSER PASSWORD '$PASSWORD';
    ELSE
        ALTER ROLE $ROLE LOGIN SUPERUSER PASSWORD '$PASSWORD';
    END IF;
END
\$\$;
SQL
    [ "$(psql_url -tAc 'SELECT 1' 2>&1)" = 1 ] || die "cannot log in as $ROLE over TCP at $HOST:$PORT: $(psql_url -tAc 'SELECT 1' 2>&1 || true)"
}

finish() {
    ensure_role
    log "PostgreSQL is ready at $HOST:$PORT (cluster: $DATA_DIR)"
    printf '%s\n' "$URL"
    exit 0
}

# --- PostgreSQL binaries ---------------------------------------------------

BINDIR="$(find_bindir)"
if [ -z "$BINDIR" ]; then
    install_postgres
    BINDIR="$(find_bindir)"
    [ -n "$BINDIR" ] || die "installed postgresql but found no initdb under /usr/lib/postgresql/*/bin"
fi
readonly BINDIR
PG_MAJOR="$(basename "$(dirname "$BINDIR")")"
readonly PG_MAJOR
log "using PostgreSQL $PG_MAJOR from $BINDIR"

# --- One run at a time -----------------------------------------------------

mkdir -p "$STATE_DIR"
if command -v flock >/dev/null 2>&1; then
    exec 9>"$STATE_DIR/pg.lock"
    flock -w 300 9 || die "timed out waiting for another scripts/postgres.sh run"
fi

# --- Already running? ------------------------------------------------------

if server_ready; then
    log "a server is already accepting connections on $HOST:$PORT"
    finish
fi

# --- The postgres user and the cluster directory ---------------------------

if is_root; then
    if ! getent passwd postgres >/dev/null; then
        log "creating the postgres system user"
        if getent group postgres >/dev/null; then
            useradd --system --gid postgres --no-create-home --home-dir /var/lib/postgresql --shell /bin/bash postgres
        else
            useradd --system --user-group --no-create-home --home-dir /var/lib/postgresql --shell /bin/bash postgres
        fi
    fi
    mkdir -p "$PG_DIR"
    chown -R postgres:postgres "$PG_DIR"
    as_pg test -w "$PG_DIR" ||
        die "the postgres user cannot write to $PG_DIR; every parent directory of the repository must be searchable by it (chmod o+x)"
else
    mkdir -p "$PG_DIR"
fi
as_pg mkdir -p "$SOCKET_DIR"
as_pg chmod 0700 "$SOCKET_DIR"

socket_path="$SOCKET_DIR/.s.PGSQL.$PORT"
[ "${#socket_path}" -lt 100 ] ||
    die "the socket path $socket_path is too long for a Unix socket (${#socket_path} >= 100 bytes); use a shorter checkout path"

# --- Initialise ------------------------------------------------------------

if [ -f "$DATA_DIR/PG_VERSION" ] && [ "$(cat "$DATA_DIR/PG_VERSION")" != "$PG_MAJOR" ]; then
    log "the cluster in $DATA_DIR is PostgreSQL $(cat "$DATA_DIR/PG_VERSION"), not $PG_MAJOR; recreating it (test data only)"
    rm -rf "$DATA_DIR"
fi
if [ ! -f "$DATA_DIR/PG_VERSION" ]; then
    # A directory without PG_VERSION is a half-finished initdb.
    rm -rf "$DATA_DIR"
    log "initialising a cluster in $DATA_DIR"
    as_pg "$BINDIR/initdb" -D "$DATA_DIR" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-locale >&2
fi

# Our settings, rewritten every start so a moved checkout still works.
escaped_socket_dir="${SOCKET_DIR//\'/\'\'}"
as_pg tee "$DATA_DIR/steward.conf" >/dev/null <<CONF
# Written by scripts/postgres.sh; changes are overwritten.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$escaped_socket_dir'
max_connections = 300
# A disposable test cluster: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
if ! grep -q "^include_if_exists = 'steward.conf'" "$DATA_DIR/postgresql.conf"; then
    printf "\ninclude_if_exists = 'steward.conf'\n" | as_pg tee -a "$DATA_DIR/postgresql.conf" >/dev/null
fi

# --- A previous server: still running elsewhere, or stale? -----------------

pid_file="$DATA_DIR/postmaster.pid"
if [ -f "$pid_file" ]; then
    pid="$(head -n 1 "$pid_file" 2>/dev/null || true)"
    if is_our_postmaster "$pid"; then
        log "this cluster's server (pid $pid) is running but not answering on $HOST:$PORT; waiting"
        for _ in $(seq 1 20); do
            server_ready && finish
            sleep 0.5
        done
        log "restarting it"
        as_pg "$BINDIR/pg_ctl" -D "$DATA_DIR" -m fast -w -t 60 stop >&2 9>&- ||
            die "could not stop the unresponsive server (pid $pid); see $LOG_FILE"
    else
        log "removing stale $pid_file (pid ${pid:-?} is not this cluster's server)"
        rm -f "$pid_file"
    fi
fi
# Socket lock files can outlive their server the same way.
lock_file="$SOCKET_DIR/.s.PGSQL.$PORT.lock"
if [ -f "$lock_file" ] && ! is_our_postmaster "$(head -n 1 "$lock_file" 2>/dev/null || true)"; then
    rm -f "$lock_file" "$socket_path"
fi

# --- Start -----------------------------------------------------------------

log "starting the server (log: $LOG_FILE)"
# 9>&-: the server must not inherit (and hold forever) our lock.
if ! as_pg "$BINDIR/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t 60 start >&2 9>&-; then
    [ -f "$LOG_FILE" ] && tail -n 30 "$LOG_FILE" >&2
    die "the server did not start; see $LOG_FILE"
fi
for _ in $(seq 1 60); do
    server_ready && break
    sleep 0.5
done
server_ready || die "the server started but does not accept connections on $HOST:$PORT; see $LOG_FILE"

finish
