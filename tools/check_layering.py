#!/usr/bin/env python3
"""Fails the build when a folder includes what DESIGN.md section 1 does not allow.

  protocol  -> nothing of ours; no Asio, websocketpp or RocksDB
  storage   -> protocol;          no Asio or websocketpp
  broker    -> protocol, storage
  client    -> protocol;          no RocksDB, storage or broker
  tools     -> client, storage, protocol (servers for conformance tests may use broker)
Usage: check_layering.py <source root> <stamp file to write on success>
"""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
OURS = ("protocol", "storage", "broker", "client", "tools")
THIRD_PARTY_BANNED = {
    "protocol": ("asio", "websocketpp", "rocksdb"),
    "storage": ("asio", "websocketpp"),
    "broker": (),
    "client": ("rocksdb",),
    "tools": (),
}
ALLOWED = {
    "protocol": {"protocol"},
    "storage": {"protocol", "storage"},
    "broker": {"protocol", "storage", "broker"},
    "client": {"protocol", "client"},
    "tools": {"protocol", "storage", "client", "tools"},
}
# Test-suite servers built on the broker's handler API.
TOOLS_WITH_BROKER = {"sio_echo.cc", "sio_interop_server.cc"}

include = re.compile(r'^\s*#\s*include\s*[<"]([^">]+)[">]', re.M)
errors = []
for folder in ALLOWED:
    for path in sorted((root / folder).rglob("*")):
        if path.suffix not in (".h", ".cc", ".hpp", ".cpp") or "examples" in path.parts:
            continue
        for inc in include.findall(path.read_text(errors="replace")):
            head = inc.split("/")[0].removesuffix(".hpp").removesuffix(".h")
            allowed = set(ALLOWED[folder])
            if folder == "tools" and path.name in TOOLS_WITH_BROKER:
                allowed.add("broker")
            if head in OURS and head not in allowed:
                errors.append(f"{path.relative_to(root)}: includes {inc} ({folder} may not depend on {head})")
            if head in THIRD_PARTY_BANNED[folder]:
                errors.append(f"{path.relative_to(root)}: includes {inc} ({folder} may not use {head})")
if errors:
    print("layering violations:\n  " + "\n  ".join(errors), file=sys.stderr)
    sys.exit(1)
pathlib.Path(sys.argv[2]).write_text("ok\n")
