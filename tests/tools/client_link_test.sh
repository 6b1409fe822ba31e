#!/usr/bin/env bash
# A service that links ihs_client gets Cap'n Proto, Abseil, libsodium and nothing of the store:
# the probe (tests/server/client_link_probe.cc), built with ihs_client alone, loads no RocksDB.
#   client_link_test.sh PROBE_BINARY
set -uo pipefail
probe=$1
libs=$(ldd "$probe")
passed=0 failed=0
if grep -q rocksdb <<<"$libs"; then
  echo "FAIL: the client library brings RocksDB:"; grep rocksdb <<<"$libs"; failed=$((failed + 1))
else
  passed=$((passed + 1))
fi
grep -q capnp-rpc <<<"$libs" && passed=$((passed + 1)) || { echo "FAIL: no Cap'n Proto RPC?"; failed=$((failed + 1)); }
# And it runs: a connection to nowhere is an error, not a crash.
"$probe" >/dev/null 2>&1 && passed=$((passed + 1)) || { echo "FAIL: the probe failed to run"; failed=$((failed + 1)); }
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
