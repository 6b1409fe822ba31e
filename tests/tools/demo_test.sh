#!/usr/bin/env bash
# The README's first command, `bash tools/setup.sh demo`, run as a new user would: the story it
# prints is what the timeline shows, the as-of replay shows what was known the day after the
# email, it serves, and run again after an append through the server it doubles nothing and
# serves again. The demo's directory, truth and address are moved into a temporary directory
# (IHS_DEMO_DIR, IHS_DEMO_TRUTH, IHS_DEMO_LISTEN), and the binaries of this build are used
# (IHS_BIN) instead of building.
# Usage: demo_test.sh SOURCE_DIR BIN_DIR
set -uo pipefail
src=$1
bin=$2
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }
expect_in() {  # name file text
  grep -qF -- "$3" "$2" && ok || { bad "$1: no \"$3\" in $2"; sed 's/^/  | /' "$2" | tail -40; }
}
# The same for an extended regular expression: what depends on the weekday the demo is made on
# (service hours on a weekend, how many newsletters fall into the weeks shown) is matched, not
# spelled out, so that the test holds every day of the week.
expect_re() {  # name file regex
  grep -qE -- "$3" "$2" && ok || { bad "$1: nothing matches /$3/ in $2"; sed 's/^/  | /' "$2" | tail -40; }
}

# Runs the demo in the background until ihsd is ready; sets pid (ihsd's: the script execs it)
# and addr.
run_demo() {  # output-file
  IHS_BIN="$bin" IHS_DEMO_DIR="$tmp/demo" IHS_DEMO_TRUTH="$tmp/demo-truth.json" \
    IHS_DEMO_LISTEN=127.0.0.1:0 IHS_DEMO_HTTP=127.0.0.1:0 bash "$src/tools/setup.sh" demo >"$1" 2>&1 &
  pid=$!
  for _ in $(seq 900); do  # 90 s: a sanitizer build is slow
    grep -q "^ready: " "$1" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  addr=$(sed -n 's/^listening on //p' "$1" | head -1)
  http=$(sed -n 's/^http on //p' "$1" | head -1)
  [ -n "$addr" ] && ok || { bad "the demo did not serve"; cat "$1"; exit 1; }
}

stop_demo() {
  kill -TERM "$pid"
  wait "$pid"
  local rc=$?
  pid=
  [ "$rc" -eq 0 ] && ok || bad "ihsd exit $rc after SIGTERM"
}

run_demo "$tmp/first.txt"
# The story's words and the timeline agree.
expect_in "the story says what the timeline shows" "$tmp/first.txt" "answers the email too, two days late: 0 open, 2 answered"
expect_re "the timeline: 0 open, 2 answered" "$tmp/first.txt" '^customer-ada \(customer\): [0-9]+ touchpoints, 0 open, 2 answered \(median 1h25m, [0-9dhm]+ in service hours\), 1 channel switch$'
expect_in "the email answered on twitter" "$tmp/first.txt" '"Complaint: the product arrived broken"  answered on twitter after 2d1h'
expect_re "the tweet answered and a switch" "$tmp/first.txt" 'answered on twitter after 1h25m \([0-9dhm]+ service\); SWITCH from email$'
# Recorded at arrival: the replay the day after the email knows the email, open, and no tweet.
expect_re "the replay as of the day after" "$tmp/first.txt" '^customer-ada \(customer\): [34] touchpoints, 1 open, 0 answered \(median —\), 0 channel switches$'
expect_in "waiting is counted to that moment" "$tmp/first.txt" "OPEN, waiting 1d2h"
# The history ends today: the email waited days, not most of a year.
ends=$(cat "$tmp/demo/ends")
[ "$ends" = "$(date -u +%F)" ] && ok || bad "the demo history ends $ends, not today"
expect_in "the page is written" "$tmp/first.txt" "$tmp/demo/customer-ada.html"
[ -s "$tmp/demo/customer-ada.html" ] && ok || bad "no page at $tmp/demo/customer-ada.html"
expect_in "her segments with the why" "$tmp/first.txt" "left (version 1)"
expect_in "identity is shown" "$tmp/first.txt" "multiStreamPersons"
[ -s "$tmp/demo-truth.json" ] && ok || bad "no ground truth at $tmp/demo-truth.json"

# The append the demo suggests, through the server, with the writer token it printed.
writer=$(sed -n 's/.*IHS_TOKEN=\([0-9a-f]*\) .* append .*/\1/p' "$tmp/first.txt" | head -1)
line=$(grep -o "echo '{.*}'" "$tmp/first.txt" | head -1 | sed "s/^echo '//; s/'\$//")
[ -n "$writer" ] && [ -n "$line" ] && ok || bad "the demo printed no append to try"
if IHS_TOKEN="$writer" "$bin/ihs" append --connect "$addr" --stream customer-new <<<"$line" >"$tmp/append.txt" 2>&1; then
  ok
else
  bad "the suggested append failed: $(cat "$tmp/append.txt")"
fi
# The console it names answers.
expect_in "the console is named" "$tmp/first.txt" "and the console on http://"
if [ -n "$http" ] && curl -sf "http://$http/" -o "$tmp/console.html"; then
  expect_in "the console's page" "$tmp/console.html" "/console.js"
else
  bad "no console at http://$http/"
fi
# And reading beside the server it started.
"$bin/ihs" timeline customer-new --data "$tmp/demo" >"$tmp/beside.txt" 2>&1 && ok || bad "timeline beside ihsd: $(cat "$tmp/beside.txt")"
stop_demo
events=$("$bin/ihs" stats --data "$tmp/demo" --json | grep -o '"events":[0-9]*')

# Again: the same history, nothing doubles, the appended complaint stays, and it serves.
run_demo "$tmp/second.txt"
expect_in "run again: nothing doubles" "$tmp/second.txt" "events of this history were already in ${tmp}/demo: all of it, nothing to write"
story=$(grep -m1 '^customer-ada (customer): ' "$tmp/first.txt")
[ -n "$story" ] && ok || bad "the first run showed no timeline of customer-ada"
expect_in "run again: the same story" "$tmp/second.txt" "$story"
stop_demo
[ "$("$bin/ihs" stats --data "$tmp/demo" --json | grep -o '"events":[0-9]*')" = "$events" ] && ok ||
  bad "the second run changed the log's size ($events before)"
"$bin/ihs" read customer-new --data "$tmp/demo" >"$tmp/new.txt" 2>&1
expect_in "the appended complaint stays" "$tmp/new.txt" "complaint"

echo "demo_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
