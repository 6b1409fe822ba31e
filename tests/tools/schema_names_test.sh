#!/usr/bin/env bash
# Field and union member names in schema/ that code generators of other languages reserve: Rust's
# (capnpc-rust) makes Reader, Builder, Owned, Client, Server and Pipeline types for every struct and
# interface, and a union member `reader` clashed with them. Debian 12 ships no generator but the
# C++ one, so this is checked as a rule. Enumerants (`reader @2;`, a variant inside its enum) are
# not affected, only fields.
#   schema_names_test.sh REPO_ROOT
set -uo pipefail
root=$1
reserved='reader|builder|owned|client|server|pipeline|which|union'
clashes=$(grep -nE "^[[:space:]]*(${reserved})[[:space:]]+@[0-9]+[[:space:]]*:" "$root"/schema/*.capnp)
if [ -n "$clashes" ]; then
  echo "FAIL: names other languages' generators reserve:"
  echo "$clashes"
  echo "0 passed, 1 failed"
  exit 1
fi
# And the rule itself finds what it is for.
probe=$(printf 'struct S {\n  union {\n    reader @0 :Text;\n  }\n}\n' | grep -cE "^[[:space:]]*(${reserved})[[:space:]]+@[0-9]+[[:space:]]*:")
if [ "$probe" -ne 1 ]; then
  echo "FAIL: the rule does not find a member named reader"
  echo "1 passed, 1 failed"
  exit 1
fi
echo "2 passed, 0 failed"
