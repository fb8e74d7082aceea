#!/usr/bin/env bash
# check_install.sh BUILD_DIR [BROKER_URL]
#
# Installs BUILD_DIR into a temporary --destdir, then builds a small program against the
# installed ferry-client four ways - g++ with `pkg-config --cflags --libs ferry-client`
# (shared), g++ with the static archive and `pkg-config --static`, and a CMake project
# with find_package(ferry-client) using ferry-client::ferry-client and
# ferry-client::ferry-client-static - and runs each. With BROKER_URL each program
# publishes 101 events and reads them back; without it they print the version.
# The last line is "install check: OK" or the failing step.
set -euo pipefail
build=$(cd "${1:?usage: check_install.sh BUILD_DIR [BROKER_URL]}" && pwd)
url=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/ferry-install-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "install check: FAILED at $1"; exit 1; }

meson install -C "$build" --no-rebuild --destdir "$work/root" >"$work/install.log" 2>&1 || {
  tail -5 "$work/install.log"; fail "meson install"; }
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
  'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"]); print(o["libdir"])')
libdir_rel=$(echo "$prefix" | sed -n 2p)
prefix=$(echo "$prefix" | sed -n 1p)
root="$work/root$prefix"
libdir="$root/$libdir_rel"
export PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$work/root"

pkg-config --exists ferry-client || fail "pkg-config --exists ferry-client"
echo "pkg-config: $(pkg-config --modversion ferry-client): $(pkg-config --cflags --libs ferry-client)"
g++ -std=c++20 "$here/app.cc" $(pkg-config --cflags --libs ferry-client) -o "$work/app_pc" || fail "g++ + pkg-config (shared)"
g++ -std=c++20 "$here/app.cc" $(pkg-config --cflags ferry-client) -L"$libdir" -Wl,-Bstatic -lferry-client -Wl,-Bdynamic \
  $(pkg-config --libs --static ferry-client | sed 's/-lferry-client//') -o "$work/app_pc_static" || fail "g++ + pkg-config (static)"
cmake -S "$here" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$root" >"$work/cmake.log" 2>&1 || { cat "$work/cmake.log"; fail "cmake configure"; }
cmake --build "$work/cmake" -j2 >"$work/cmake-build.log" 2>&1 || { tail -20 "$work/cmake-build.log"; fail "cmake build"; }

for app in "$work/app_pc" "$work/app_pc_static" "$work/cmake/app_shared" "$work/cmake/app_static"; do
  LD_LIBRARY_PATH="$libdir" "$app" $url || fail "running $(basename "$app")"
done
if ldd "$work/app_pc_static" | grep -q ferry-client; then fail "app_pc_static links the shared library"; fi
echo "install check: OK"
