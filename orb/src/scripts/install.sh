#!/bin/sh
# Installs a pinned sagedeploy release and verifies its SHA-256 checksum before putting it on PATH.
# Inputs (environment): SAGEDEPLOY_VERSION (e.g. 0.1.0), SAGEDEPLOY_SHA256 (optional: the expected
# checksum of the archive; when empty, the release's checksums.txt is used), SAGEDEPLOY_INSTALL_DIR.
set -eu

version="${SAGEDEPLOY_VERSION#v}"
dest="${SAGEDEPLOY_INSTALL_DIR:-$HOME/bin}"
# CircleCI passes a parameter such as ~/bin through the environment as is, unexpanded.
case "$dest" in "~" | "~/"*) dest="$HOME${dest#"~"}" ;; esac
base="${SAGEDEPLOY_DOWNLOAD_BASE:-https://github.com/sagedeploy/sagedeploy/releases/download}"

if command -v sagedeploy >/dev/null 2>&1 && sagedeploy version 2>/dev/null | grep -q " v\{0,1\}${version} "; then
  echo "sagedeploy ${version} is already installed"
  exit 0
fi

case "$(uname -s)" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) echo "sagedeploy: unsupported operating system $(uname -s); use linux or darwin" >&2; exit 1 ;;
esac
case "$(uname -m)" in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "sagedeploy: unsupported architecture $(uname -m); use amd64 or arm64" >&2; exit 1 ;;
esac

archive="sagedeploy_${version}_${os}_${arch}.tar.gz"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl --fail --silent --show-error --location --retry 3 -o "$1" "$2"
  elif command -v wget >/dev/null 2>&1; then
    wget --quiet --tries=3 -O "$1" "$2"
  else
    echo "sagedeploy: need curl or wget to download ${archive}" >&2
    exit 1
  fi
}

echo "Downloading ${archive} (sagedeploy ${version})"
fetch "$tmp/$archive" "$base/v${version}/${archive}"

expected="${SAGEDEPLOY_SHA256:-}"
if [ -z "$expected" ]; then
  fetch "$tmp/checksums.txt" "$base/v${version}/checksums.txt"
  expected="$(awk -v f="$archive" '$2 == f { print $1 }' "$tmp/checksums.txt")"
fi
if [ -z "$expected" ]; then
  echo "sagedeploy: no checksum for ${archive} in the release's checksums.txt; refusing to install" >&2
  exit 1
fi
actual="$(sha256sum "$tmp/$archive" | cut -d' ' -f1)"
if [ "$actual" != "$expected" ]; then
  echo "sagedeploy: checksum mismatch for ${archive}: expected ${expected}, got ${actual}" >&2
  exit 1
fi
echo "Checksum verified: ${actual}"

tar -xzf "$tmp/$archive" -C "$tmp" sagedeploy
mkdir -p "$dest"
install -m 0755 "$tmp/sagedeploy" "$dest/sagedeploy"
case ":$PATH:" in
  *":$dest:"*) ;;
  *) [ -n "${BASH_ENV:-}" ] && echo "export PATH=\"$dest:\$PATH\"" >> "$BASH_ENV" ;;
esac
"$dest/sagedeploy" version
