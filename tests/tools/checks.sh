# Shared by the command-line tests: a temporary directory, and checks that count passes and
# failures. Source it after `set -uo pipefail`; it sets $tmp, $passed and $failed.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0
failed=0

check() {  # check NAME EXPECTED_EXIT COMMAND... ; output in $tmp/out, $tmp/err
  local name=$1 want=$2
  shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  local got=$?
  if [ "$got" -eq "$want" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $name: exit $got, want $want"
    sed 's/^/  stdout: /' "$tmp/out" | head -5
    sed 's/^/  stderr: /' "$tmp/err" | head -5
  fi
}
expect_in() {  # expect_in NAME FILE TEXT
  if grep -qF -- "$3" "$2"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $1: '$3' not in $2:"
    head -5 "$2" | sed 's/^/  /'
  fi
}
expect_not_in() {  # expect_not_in NAME FILE TEXT
  if grep -qF -- "$3" "$2"; then
    failed=$((failed + 1))
    echo "FAIL: $1: '$3' in $2"
  else
    passed=$((passed + 1))
  fi
}

start_ihsd() {  # start_ihsd IHSD DATA TOKENS: an ihsd on a free loopback port; sets $ihsd_pid, $addr
  "$1" --data "$2" --listen 127.0.0.1:0 --tokens "$3" >"$tmp/ihsd.out" 2>"$tmp/ihsd.err" &
  ihsd_pid=$!
  for _ in $(seq 100); do grep -q ready "$tmp/ihsd.out" && break; sleep 0.1; done
  addr=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$tmp/ihsd.out" | cut -d' ' -f3)
}
