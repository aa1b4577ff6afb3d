#!/usr/bin/env bash
# Builds release archives of sagedeploy with checksums, the layout the orb and the GitHub Action
# install from: dist/sagedeploy_{version}_{os}_{arch}.tar.gz and dist/checksums.txt.
#
#   scripts/release.sh 0.1.0                       # linux/darwin x amd64/arm64
#   PLATFORMS="linux/amd64" scripts/release.sh 0.1.0
set -euo pipefail
cd "$(dirname "$0")/.."

version="${1:?usage: scripts/release.sh VERSION (e.g. 0.1.0)}"
version="${version#v}"
platforms="${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}"
out="${DIST_DIR:-dist}"
commit="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
pkg=github.com/sagedeploy/sagedeploy/internal/buildinfo
ldflags="-s -w -X $pkg.version=v$version -X $pkg.commit=$commit -X $pkg.date=$date"

rm -rf "$out"
mkdir -p "$out"
for p in $platforms; do
  os="${p%/*}"
  arch="${p#*/}"
  name="sagedeploy_${version}_${os}_${arch}"
  echo "building $name"
  stage="$(mktemp -d)"
  CGO_ENABLED=0 GOOS="$os" GOARCH="$arch" go build -trimpath -ldflags "$ldflags" -o "$stage/sagedeploy" ./cmd/sagedeploy
  cp README.md LICENSE "$stage/"
  tar -C "$stage" -czf "$out/$name.tar.gz" sagedeploy README.md LICENSE
  rm -rf "$stage"
done
(cd "$out" && sha256sum ./*.tar.gz | sed 's| \./| |' > checksums.txt)
echo "wrote $(ls "$out" | wc -l) files to $out:"
cat "$out/checksums.txt"
