#!/usr/bin/env bash
# The fault suite: builds the sagedeploy binary and runs internal/chaos (build tag chaos) against
# it as separate processes — kill -9 of `sagedeploy deploy`, `sagedeploy server` and
# `sagedeploy local` at random points, deploys racing on one endpoint, invocations during 20
# deploys/rollbacks/scales, corrupt artifacts and malformed requests to every API. CI runs it; it
# takes about a minute or two on a 2-core machine.
#
#   scripts/chaos.sh                        # the whole suite
#   scripts/chaos.sh -run TestRacingDeploys # extra `go test` flags (e.g. -v)
#   CHAOS_SEED=42 scripts/chaos.sh          # replay the random kill points a failed run logged
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d /tmp/sagedeploy-chaos.XXXXXX)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

echo "== building sagedeploy for the fault suite"
go build -o "$work/sagedeploy" ./cmd/sagedeploy

echo "== fault suite (go test -tags chaos ./internal/chaos/)"
SAGEDEPLOY_BIN="$work/sagedeploy" go test -tags chaos -count=1 -timeout 10m "$@" ./internal/chaos/

echo "== fault suite finished in $(( $(date +%s) - start ))s"
