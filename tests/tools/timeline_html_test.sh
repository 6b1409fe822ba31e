#!/usr/bin/env bash
# `ihs timeline PARTY --html FILE` in a real headless Chromium (Debian's package, installed by
# tools/setup.sh): the page loads without script errors, fetches nothing, and shows one lane per
# channel and one item per entry, the channel switch and the open messages highlighted.
# Usage: timeline_html_test.sh IHS_BINARY
set -euo pipefail
ihs=$1
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
  echo "FAIL: chromium is not installed (bash tools/setup.sh installs it)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$ihs" generate --parties 300 --days 30 --seed 4 --data "$tmp/d" --json > /dev/null 2>&1
"$ihs" timeline customer-ada --data "$tmp/d" --limit 1000 --json --html "$tmp/ada.html" \
  > "$tmp/ada.json" 2> /dev/null

grep -Eq '(src|href)=' "$tmp/ada.html" && fail "the page links or loads something"
grep -Eo 'https?://[^"]*' "$tmp/ada.html" | grep -v '^http://www.w3.org/2000/svg$' && \
  fail "the page names a URL other than the SVG namespace"

timeout 90 "$chromium" --headless --no-sandbox --disable-gpu --user-data-dir="$tmp/profile" \
  --dump-dom "file://$tmp/ada.html" > "$tmp/dom.html" 2> "$tmp/chromium.log" ||
  fail "chromium failed: $(tail -5 "$tmp/chromium.log")"
body=$(grep -o '<body[^>]*>' "$tmp/dom.html") || fail "no <body> in the rendered page"
echo "$body" | grep -q 'data-ready="1"' || fail "the page's script did not run: $body"
echo "$body" | grep -q 'data-error' && fail "script error: $body"

lanes=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len({e["channel"] for e in d["entries"]}))' "$tmp/ada.json")
items=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["entries"]))' "$tmp/ada.json")
open=$(python3 -c 'import json,sys; print(sum(1 for e in json.load(open(sys.argv[1]))["entries"] if e.get("response",{}).get("open")))' "$tmp/ada.json")
switch=$(python3 -c 'import json,sys; print([e["eventId"] for e in json.load(open(sys.argv[1]))["entries"] if "switchFrom" in e][0])' "$tmp/ada.json")
[ "$items" -ge 4 ] || fail "customer-ada has $items entries; the story has at least 4"
echo "$body" | grep -q "data-lanes=\"$lanes\"" || fail "expected $lanes lanes: $body"
echo "$body" | grep -q "data-items=\"$items\"" || fail "expected $items items: $body"
for ch in email twitter; do
  grep -q "<g class=\"lane\" data-channel=\"$ch\"" "$tmp/dom.html" || fail "no $ch lane"
done
grep -q "class=\"item switch\" data-event=\"$switch\"" "$tmp/dom.html" ||
  fail "the switch $switch is not highlighted"
[ "$(grep -c 'class="item open' "$tmp/dom.html" || true)" -eq "$open" ] ||
  fail "expected $open open items highlighted"
grep -q 'class="thread"' "$tmp/dom.html" || fail "no thread is connected"
# The text is on the page, not only on hover; the axis has a tick per day or more.
grep -q '<div class="text"><b>Complaint: the product arrived broken</b>' "$tmp/dom.html" ||
  fail "the email's subject is not shown on the page"
[ "$(grep -c 'class="tick"' "$tmp/dom.html" || true)" -ge 3 ] || fail "fewer than 3 ticks on the axis"
[ "$(grep -c '<li data-event=' "$tmp/dom.html" || true)" -eq "$items" ] ||
  fail "expected $items entries listed"

# Without --limit, --html draws every entry of the range, not the first page of 100.
"$ihs" generate --parties 40 --days 10 --seed 5 --data "$tmp/busy" > /dev/null 2>&1
for i in $(seq 0 149); do
  printf '{"streamId":"busy","occurredAt":%d,"sourceSystem":"crm","touchpoint":{"channel":"chat","direction":"inbound","type":"message"}}\n' \
    $((1700000000000000 + i * 60000000))
done | "$ihs" append --data "$tmp/busy" --new-ids > /dev/null
"$ihs" timeline busy --data "$tmp/busy" --html "$tmp/busy.html" > "$tmp/busy.txt"
grep -q "more: --cursor" "$tmp/busy.txt" || fail "the text output should still page at 100"
[ "$(grep -c '<li data-event=' "$tmp/busy.html" || true)" -eq 150 ] ||
  fail "the page should list all 150 entries"
grep -q "150 entries drawn<" "$tmp/busy.html" || fail "the page should say 150 entries drawn"
echo "ok: $lanes lanes, $items items, switch $switch, $open open; 150 of 150 drawn"
