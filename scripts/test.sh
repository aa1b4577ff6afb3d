#!/usr/bin/env bash
# The project's test command (the README's second command, and what CI runs).
#
# It makes sure the real parts the tests drive are on the machine — Debian's Chromium for the
# dashboard's browser tests, the AWS CLI v2 and boto3 for the smoke test, PostgreSQL for the store tests —
# installing them with apt-get when it can, starts a throwaway PostgreSQL on loopback, then runs
# go vet and the whole suite with the race detector.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/aws ] || need+=(awscli)
# boto3 for Debian's python: the AWS SDK for Python half of scripts/smoke-awscli.sh.
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import boto3' >/dev/null 2>&1 || need+=(python3-boto3)
[ -x /usr/lib/postgresql/15/bin/initdb ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  if command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${need[*]} (Debian packages the tests drive)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "warning: cannot install ${need[*]}: no apt-get; tests that need them will fail and say so" >&2
  fi
fi

# A throwaway PostgreSQL on loopback for the store tests, unless the caller points at one.
pgdir=""
cleanup() {
  if [ -n "$pgdir" ]; then
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$pgdir"
  fi
}
trap cleanup EXIT
if [ -z "${SAGEDEPLOY_TEST_POSTGRES:-}" ]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -n "$pgbin" ] && [ "$(id -u)" -eq 0 ] && id postgres >/dev/null 2>&1; then
    pgdir=$(mktemp -d /tmp/sagedeploy-pg.XXXXXX)
    chown postgres "$pgdir"
    port=$(( 20000 + RANDOM % 20000 ))
    runuser -u postgres -- "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres >/dev/null
    runuser -u postgres -- "$pgbin/pg_ctl" -D "$pgdir/data" -w -l "$pgdir/log" \
      -o "-h 127.0.0.1 -p $port -k $pgdir -c fsync=on" start >/dev/null
    export SAGEDEPLOY_TEST_POSTGRES="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
    echo "== PostgreSQL for store tests at 127.0.0.1:$port"
  else
    echo "note: no PostgreSQL started (need root and Debian's postgresql); store tests run on SQLite only" >&2
  fi
fi

echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 -timeout 30m "$@" ./...
