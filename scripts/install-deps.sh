#!/usr/bin/env bash
# Installs the Debian 12 packages Ferry needs to build and test (idempotent).
# Runs apt-get only when something is missing; uses sudo when not root.
set -euo pipefail

packages=(
  g++ meson ninja-build pkg-config cmake
  libasio-dev libwebsocketpp-dev librocksdb-dev libflatbuffers-dev flatbuffers-compiler
  libfmt-dev doctest-dev nlohmann-json3-dev libcli11-dev libtomlplusplus-dev zlib1g-dev
  clang libclang-rt-14-dev
  python3 python3-socketio python3-websocket
  ca-certificates
)
# Node.js + npm for the interop tests (official socket.io-client); the machine's own
# node is used when present.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
