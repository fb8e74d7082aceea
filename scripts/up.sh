#!/usr/bin/env bash
# Quick start: install dependencies, build, and run ferry-broker with embedded defaults
# (127.0.0.1:7070, data in ./ferry-data). Extra arguments go to ferry-broker.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/broker/ferry-broker "$@"
