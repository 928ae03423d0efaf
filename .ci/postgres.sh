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
