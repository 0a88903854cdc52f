#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on 127.0.0.1 for the tests and print its URL on the last line.
# Uses Debian's postgresql package (installed if missing). Data lives under $PGTMP (default /tmp/fcast-pg).
set -euo pipefail
PGTMP=${PGTMP:-/tmp/fcast-pg}
PGPORT=${PGPORT:-55432}
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) >&2
fi
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
RUNAS=()
if [ "$(id -u)" = "0" ]; then
  id postgres >/dev/null 2>&1 || useradd --system --home "$PGTMP" postgres
  RUNAS=(runuser -u postgres --)
fi
if [ -f "$PGTMP/data/postmaster.pid" ] && "${RUNAS[@]}" "$BIN/pg_ctl" -D "$PGTMP/data" status >/dev/null 2>&1; then
  echo "postgresql already running in $PGTMP" >&2
else
  rm -rf "$PGTMP"; mkdir -p "$PGTMP"
  [ "$(id -u)" = "0" ] && chown postgres "$PGTMP"
  "${RUNAS[@]}" "$BIN/initdb" -D "$PGTMP/data" -U postgres --auth=trust -E UTF8 >/dev/null
  "${RUNAS[@]}" "$BIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w \
    -o "-p $PGPORT -k $PGTMP -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
fi
echo "postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"
