# Sourced by .ci/run. Makes sure a PostgreSQL server answers and exports ORGUSAGE_TEST_POSTGRES_URL.
# Order: an already running server on 127.0.0.1:5432; the machine's cluster (started); a private
# throwaway cluster on port 55432 built from the installed binaries.

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

pg_answers() { # host port
  pg_isready -q -h "$1" -p "$2" -t 3 >/dev/null 2>&1
}

ensure_db() { # url-base dbname
  psql "$1/postgres" -tAc "SELECT 1 FROM pg_database WHERE datname = '$2'" | grep -q 1 \
    || psql "$1/postgres" -c "CREATE DATABASE $2" >/dev/null
}

ensure_postgres() {
  if [[ -n "${ORGUSAGE_TEST_POSTGRES_URL:-}" ]]; then return 0; fi
  local base="postgres://postgres@127.0.0.1:5432"
  if ! pg_answers 127.0.0.1 5432 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
    for _ in $(seq 1 20); do pg_answers 127.0.0.1 5432 && break; sleep 0.5; done
  fi
  if ! pg_answers 127.0.0.1 5432; then
    local dir=/tmp/orgusage-ci-pg bin
    bin="$(pg_bin)"
    if ! pg_answers 127.0.0.1 55432; then
      rm -rf "$dir" && mkdir -p "$dir" && chown postgres:postgres "$dir"
      su postgres -c "$bin/initdb -D $dir/data -A trust -U postgres --no-sync" >/dev/null
      su postgres -c "$bin/pg_ctl -D $dir/data -o '-p 55432 -k $dir -c listen_addresses=127.0.0.1 -c fsync=off' -l $dir/server.log -w start" >/dev/null
    fi
    base="postgres://postgres@127.0.0.1:55432"
  fi
  ensure_db "$base" test
  export ORGUSAGE_TEST_POSTGRES_URL="$base/test"
}

# PgBouncer in transaction pooling mode in front of the server above, on 127.0.0.1:6432
# (ORGUSAGE_PGBOUNCER_PORT), run as the postgres user because PgBouncer refuses to run as root.
# Exports ORGUSAGE_TEST_PGBOUNCER_URL; the tests create a database per test and reach it
# through the wildcard entry (PgBouncer drops the `options` parameter that picks a schema).
ensure_pgbouncer() {
  if [[ -n "${ORGUSAGE_TEST_PGBOUNCER_URL:-}" ]]; then return 0; fi
  local port="${ORGUSAGE_PGBOUNCER_PORT:-6432}"
  local dir="/tmp/orgusage-ci-pgbouncer-${port}"
  local hostport pg_host pg_port
  hostport="${ORGUSAGE_TEST_POSTGRES_URL#*://}"; hostport="${hostport#*@}"; hostport="${hostport%%/*}"
  pg_host="${hostport%%:*}"; pg_port=5432
  [[ "$hostport" == *:* ]] && pg_port="${hostport##*:}"
  if ! pg_answers 127.0.0.1 "$port"; then
    mkdir -p "$dir"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=${pg_host} port=${pg_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${dir}/userlist.txt
pool_mode = transaction
; 20 test processes x 10 threads, plus the parallel tests.
max_client_conn = 500
; Server connections per database/user pair: the 20 x 10 test gets at most this many.
default_pool_size = 20
; Tests drop their databases; let idle server connections and pools go soon.
server_idle_timeout = 10
autodb_idle_timeout = 30
log_connections = 0
log_disconnections = 0
; libpq's and diesel's startup parameters that PgBouncer does not track.
ignore_startup_parameters = extra_float_digits,options
logfile = ${dir}/pgbouncer.log
pidfile = ${dir}/pgbouncer.pid
INI
    echo '"postgres" ""' >"$dir/userlist.txt"
    chown -R postgres:postgres "$dir"
    su postgres -s /bin/sh -c "pgbouncer -d -q $dir/pgbouncer.ini"
    for _ in $(seq 1 20); do pg_answers 127.0.0.1 "$port" && break; sleep 0.25; done
  fi
  export ORGUSAGE_TEST_PGBOUNCER_URL="postgres://postgres@127.0.0.1:${port}/test"
}
