#!/usr/bin/env bash
# End-to-end test of `ihs audit` and of the stand-alone `ihs-verify`: heads, proofs, what a
# forged head or proof gets, and the documented exit codes (0 ok, 2 bad input, 4 does not verify).
#   audit_cli_test.sh IHS_BINARY IHS_VERIFY_BINARY REPO_ROOT
set -uo pipefail
ihs=$1
verify=$2
root=$3
source "$(dirname "$0")/checks.sh"
data=$tmp/data

sample=$root/tools/sample/history.jsonl
check "append sample" 0 "$ihs" append --data "$data" <"$sample"
check "pubkey" 0 "$ihs" audit pubkey --data "$data"
cp "$tmp/out" "$tmp/key"
expect_in "pubkey is a note verifier key" "$tmp/key" "ihs/"
check "pubkey json" 0 "$ihs" audit pubkey --data "$data" --json
expect_in "pubkey json" "$tmp/out" '"verifierKey":"ihs/'
check "head 1" 0 "$ihs" audit head --data "$data" --out "$tmp/h1"
expect_in "head names its size" "$tmp/h1" $'\n23\n'
# The same touchpoints again under new ids: the log grows to 46.
sed 's/"5a3e0000/"5a3f0000/' "$sample" >"$tmp/more.jsonl"
check "append more" 0 "$ihs" append --data "$data" <"$tmp/more.jsonl"
check "head 2 json" 0 "$ihs" audit head --data "$data" --out "$tmp/h2" --json
expect_in "head json size" "$tmp/out" '"size":46'

check "prove event" 0 "$ihs" audit prove-event 5 --head "$tmp/h1" --data "$data" --out "$tmp/p5"
expect_in "prove says ok" "$tmp/out" "ok: position 5 is in the tree of 23 events"
check "prove event json" 0 "$ihs" audit prove-event 22 --head "$tmp/h2" --data "$data" --json
expect_in "prove json" "$tmp/out" '"ok":true'
check "prove past the head" 2 "$ihs" audit prove-event 30 --head "$tmp/h1" --data "$data"
expect_in "past the head says why" "$tmp/err" "not covered by the head"
check "verify-head" 0 "$ihs" audit verify-head "$tmp/h1" "$tmp/h2" --data "$data" --out "$tmp/c"
expect_in "verify-head ok" "$tmp/out" "extends the log of 23 events unchanged"
check "verify-head backwards" 2 "$ihs" audit verify-head "$tmp/h2" "$tmp/h1" --data "$data"
check "verify-party" 0 "$ihs" audit verify-party customer-ada --head "$tmp/h2" --data "$data"
expect_in "verify-party count" "$tmp/out" "ok: 16 events of customer-ada"
check "verify-party json" 0 "$ihs" audit verify-party customer-ada --head "$tmp/h1" --data "$data" --json
expect_in "verify-party json" "$tmp/out" '"afterHead":8'
check "verify-party unknown" 2 "$ihs" audit verify-party nobody --head "$tmp/h1" --data "$data"
expect_in "unknown party" "$tmp/err" "no such party: nobody"
# A head kept as `ihs audit head --json` printed it is a head too.
"$ihs" audit head --data "$data" --json >"$tmp/h2.json"
check "verify-party with a head in JSON" 0 "$ihs" audit verify-party customer-ada --head "$tmp/h2.json" --data "$data"
expect_in "verify-party from JSON" "$tmp/out" "ok: 16 events of customer-ada"
check "verify-head with a head in JSON" 0 "$ihs" audit verify-head "$tmp/h1" "$tmp/h2.json" --data "$data"
echo '{"origin":"x"}' >"$tmp/nonote.json"
check "a JSON head without a note (2)" 2 "$ihs" audit verify-head "$tmp/h1" "$tmp/nonote.json" --data "$data"
expect_in "says it holds no note" "$tmp/err" 'holds no "note"'

# Replay: what was known at a moment. The email complaint (position 3) is answered on twitter at
# position 5: as of position 4 it was still open.
check "replay at position 4" 0 "$ihs" audit replay customer-ada --position 4 --data "$data"
expect_in "replay names the moment" "$tmp/out" "the log held 5 events"
expect_in "the complaint was open then, with its subject" "$tmp/out" 'complaint      ada-router "Router drops the connection every hour"  OPEN'
if grep -q "position 5\|^5 " "$tmp/out"; then failed=$((failed + 1)); echo "FAIL: replay shows a later event"; else passed=$((passed + 1)); fi
check "replay at position 5" 0 "$ihs" audit replay customer-ada --position 5 --data "$data" --json
expect_in "answered by then" "$tmp/out" '"replyPosition":5'
expect_in "json names the size" "$tmp/out" '"logSize":6'
check "replay as of a time before the log (2)" 2 "$ihs" audit replay customer-ada --as-of 2001-01-01T00:00:00Z --data "$data"
expect_in "no such party then" "$tmp/err" "no such party: customer-ada"
check "replay as of now" 0 "$ihs" audit replay customer-ada --as-of 2100-01-01T00:00:00Z --data "$data" --json
expect_in "as of now: the whole log" "$tmp/out" '"logSize":46'
check "replay needs one moment: usage (1)" 1 "$ihs" audit replay customer-ada --data "$data"
check "replay with both: usage (1)" 1 "$ihs" audit replay customer-ada --position 3 --as-of 2100-01-01T00:00:00Z --data "$data"
check "replay past the end (2)" 2 "$ihs" audit replay customer-ada --position 46 --data "$data"
check "replay with a bad time (2)" 2 "$ihs" audit replay customer-ada --as-of yesterday --data "$data"

# Without ihs.
check "ihs-verify head" 0 "$verify" head "$tmp/key" "$tmp/h2"
check "ihs-verify inclusion" 0 "$verify" inclusion "$tmp/key" "$tmp/p5"
check "ihs-verify consistency" 0 "$verify" consistency "$tmp/key" "$tmp/h1" "$tmp/h2" "$tmp/c"
check "ihs-verify usage" 1 "$verify" head "$tmp/key"
check "ihs-verify unreadable key" 2 "$verify" head "$tmp/nokey" "$tmp/h1"

# Forgeries: a head with another size, a proof with one changed hash, a head of another store.
awk 'NR==2 {print $0+1; next} {print}' "$tmp/h1" >"$tmp/forged-head"
check "forged head (ihs)" 4 "$ihs" audit prove-event 1 --head "$tmp/forged-head" --data "$data"
expect_in "forged head says signature" "$tmp/err" "signature is wrong"
check "forged head (ihs-verify)" 4 "$verify" head "$tmp/key" "$tmp/forged-head"
awk 'NR==4 {print ($0 ~ /^A/ ? "B" substr($0, 2) : "A" substr($0, 2)); next} {print}' "$tmp/p5" >"$tmp/forged-proof"
check "forged proof" 4 "$verify" inclusion "$tmp/key" "$tmp/forged-proof"
check "proof against the wrong heads" 4 "$verify" consistency "$tmp/key" "$tmp/h2" "$tmp/h2" "$tmp/c"
check "other store" 0 "$ihs" append --data "$tmp/other" <"$sample"
check "other store's head" 0 "$ihs" audit head --data "$tmp/other" --out "$tmp/other-head"
check "other store's key" 0 "$ihs" audit pubkey --data "$tmp/other"
cp "$tmp/out" "$tmp/other-key"
check "foreign head (ihs)" 4 "$ihs" audit verify-head "$tmp/other-head" "$tmp/h2" --data "$data"
expect_in "foreign head says another store" "$tmp/err" "another store"
check "foreign head (ihs-verify)" 4 "$verify" head "$tmp/key" "$tmp/other-head"
check "not a head is bad input (2)" 2 "$verify" head "$tmp/key" "$tmp/key"

# Export: an archive that verifies without the store, in both forms, and refuses any changed byte.
check "export a party" 0 "$ihs" audit export customer-ada --data "$data" --out "$tmp/ada.ihx"
expect_in "export says what it wrote" "$tmp/out" "exported 16 events of customer-ada"
check "export the log" 0 "$ihs" audit export --all --data "$data" --out "$tmp/all.ihx" --json
expect_in "export json" "$tmp/out" '"events":46'
check "export needs a party or --all: usage (1)" 1 "$ihs" audit export --data "$data" --out "$tmp/x.ihx"
check "export of nobody (2)" 2 "$ihs" audit export nobody --data "$data" --out "$tmp/x.ihx"
if grep -q "two days and not a word" "$tmp/ada.ihx.jsonl" "$tmp/all.ihx.jsonl"; then
  failed=$((failed + 1)); echo "FAIL: an export carries content in the clear"
else
  passed=$((passed + 1))
fi
for f in ada.ihx ada.ihx.jsonl all.ihx all.ihx.jsonl; do
  check "verify-export $f" 0 "$ihs" audit verify-export "$tmp/$f" --key "$tmp/key"
done
expect_in "verify-export says ok" "$tmp/out" "ok: 46 events of the log verified"
check "verify-export json" 0 "$ihs" audit verify-export "$tmp/ada.ihx.jsonl" --key "$tmp/key" --json
expect_in "verify-export json" "$tmp/out" '"format":"jsonl"'
check "verify-export with the archive's own key" 0 "$ihs" audit verify-export "$tmp/ada.ihx"
expect_in "warns about the key" "$tmp/err" "pass --key with one you trust"
check "capnp decode reads the archive" 0 capnp decode --packed -I/usr/include "$root/schema/export.capnp" ExportRecord <"$tmp/ada.ihx"
expect_in "capnp decode shows the header" "$tmp/out" 'format = "ihs export v1"'
check "another store's key (4)" 4 "$ihs" audit verify-export "$tmp/ada.ihx" --key "$tmp/other-key"
check "verify-export of a missing file (2)" 2 "$ihs" audit verify-export "$tmp/none.ihx"
cut_bytes=$(( $(stat -c %s "$tmp/ada.ihx") - 20 ))
head -c "$cut_bytes" "$tmp/ada.ihx" >"$tmp/cut.ihx"
check "a cut archive (4)" 4 "$ihs" audit verify-export "$tmp/cut.ihx" --key "$tmp/key"
flip() {  # flip FILE OFFSET: one bit of one byte
  local byte
  byte=$(od -An -tu1 -j"$2" -N1 "$1" | tr -d ' ')
  printf "$(printf '\\%03o' $((byte ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
for f in ada.ihx ada.ihx.jsonl; do
  size=$(stat -c %s "$tmp/$f")
  survived=0
  for i in $(seq 0 59) last; do
    off=$([ "$i" = last ] && echo $((size - 1)) || echo $((i * size / 60)))
    cp "$tmp/$f" "$tmp/flipped"
    flip "$tmp/flipped" "$off"
    cmp -s "$tmp/$f" "$tmp/flipped" && { survived=$((survived + 1)); echo "FAIL: flip did nothing at $off"; continue; }
    "$ihs" audit verify-export "$tmp/flipped" --key "$tmp/key" >/dev/null 2>"$tmp/flip.err"
    rc=$?
    if [ "$rc" -ne 4 ]; then survived=$((survived + 1)); echo "FAIL: $f with byte $off flipped: exit $rc"; fi
  done
  [ "$survived" -eq 0 ] && passed=$((passed + 1)) || failed=$((failed + 1))
done

# Erasure and legal holds (exit codes: 1 usage, 2 bad input, 7 refused by the party's state).
check "erase without --reason (1)" 1 "$ihs" erase customer-ada --data "$data"
check "erase with a blank reason (2)" 2 "$ihs" erase customer-ada --data "$data" --reason " "
expect_in "blank reason says why" "$tmp/err" "needs a reason"
check "erase of nobody (2)" 2 "$ihs" erase nobody --data "$data" --reason "asked"
expect_in "erase of nobody says so" "$tmp/err" "no such party: nobody"
check "hold" 0 "$ihs" hold customer-ada --data "$data" --reason "litigation 2026-17" --by legal
expect_in "hold says where" "$tmp/out" "placed a legal hold on customer-ada: recorded at position 46"
check "erase under hold (7)" 7 "$ihs" erase customer-ada --data "$data" --reason "asked"
expect_in "under hold says so" "$tmp/err" "under legal hold (placed at position 46)"
check "content still there" 0 "$ihs" read customer-ada --data "$data"
expect_in "content still there" "$tmp/out" "two days and not a word"
check "hold twice (7)" 7 "$ihs" hold customer-ada --data "$data" --reason "again"
check "lift" 0 "$ihs" hold customer-ada --lift --data "$data" --reason "case closed" --by legal --json
expect_in "lift json" "$tmp/out" '"action":"hold lifted"'
check "erase" 0 "$ihs" erase customer-ada --data "$data" --reason "GDPR art. 17, ticket 4711" --by dpo --json
expect_in "erase json" "$tmp/out" '"action":"erased","party":"customer-ada","position":48'
check "read after erasure" 0 "$ihs" read customer-ada --data "$data"
expect_in "content marked erased" "$tmp/out" "[erased]"
expect_in "the trail names who and why" "$tmp/out" "erasure by dpo: GDPR art. 17, ticket 4711"
expect_in "and the hold's" "$tmp/out" "legal hold by legal: litigation 2026-17"
if grep -q "two days and not a word" "$tmp/out"; then
  failed=$((failed + 1)); echo "FAIL: erased content is still readable"
else
  passed=$((passed + 1))
fi
check "timeline after erasure" 0 "$ihs" timeline customer-ada --data "$data" --json
if grep -q '"text"' "$tmp/out"; then
  failed=$((failed + 1)); echo "FAIL: the timeline still shows erased text"
else
  passed=$((passed + 1))
fi
grep '"customer-ada"' "$sample" | grep '"content"' | head -1 | sed 's/"5a3e0000/"5a400000/' >"$tmp/ada-again.jsonl"
check "content for an erased party (7)" 7 "$ihs" append --data "$data" <"$tmp/ada-again.jsonl"
expect_in "says the party was erased" "$tmp/err" "cannot carry personal content"
check "erase twice (7)" 7 "$ihs" erase customer-ada --data "$data" --reason "again"
expect_in "already erased" "$tmp/err" "already erased (position 48)"
check "the log still verifies" 0 "$ihs" verify --data "$data"
check "head after erasure" 0 "$ihs" audit head --data "$data" --out "$tmp/h3"
check "erasure extends history, rewrites nothing" 0 "$ihs" audit verify-head "$tmp/h2" "$tmp/h3" --data "$data"
check "the erased party's events still prove" 0 "$ihs" audit verify-party customer-ada --head "$tmp/h3" --data "$data"

# Backup: a copy that verifies on its own and extends the heads kept of the original.
check "backup" 0 "$ihs" backup --data "$data" --to "$tmp/bk" --with-master-key
expect_in "backup verified the copy" "$tmp/out" "events, verified"
check "backup json" 0 "$ihs" backup --data "$data" --to "$tmp/bk2" --json
expect_in "backup json" "$tmp/out" '"verified":true'
check "backup into a used directory (2)" 2 "$ihs" backup --data "$data" --to "$tmp/bk"
expect_in "says it is not empty" "$tmp/err" "not empty"
check "the copy verifies alone" 0 "$ihs" verify --data "$tmp/bk"
check "head of the copy" 0 "$ihs" audit head --data "$tmp/bk" --out "$tmp/hb"
check "the copy extends the heads kept" 0 "$ihs" audit verify-head "$tmp/h1" "$tmp/hb" --data "$tmp/bk"
check "the copy signs as the store" 0 "$verify" head "$tmp/key" "$tmp/hb"

# Retention: content of a class and year expires by its data key; a held party keeps its own.
check "a store for retention" 0 "$ihs" append --data "$tmp/ret" <"$sample"
printf '# the sample is of October 2026\nchannel=chat 1y\nchannel=letter type=message 10y\n' >"$tmp/policy"
check "hold chloe" 0 "$ihs" hold customer-chloe --data "$tmp/ret" --reason "case 3" --by legal
check "retention dry run" 0 "$ihs" retention run --policy "$tmp/policy" --data "$tmp/ret" --now 2028-06-01T00:00:00Z --dry-run --json
expect_in "dry run counts" "$tmp/out" '"dryRun":true'
check "retention run" 0 "$ihs" retention run --policy "$tmp/policy" --data "$tmp/ret" --now 2028-06-01T00:00:00Z --by dpo
expect_in "retention reports" "$tmp/out" "expired"
expect_in "the held party is named" "$tmp/out" "held: customer-chloe"
check "chloe's chat is kept" 0 "$ihs" read customer-chloe --data "$tmp/ret"
expect_in "held content still open" "$tmp/out" "chat       inbound    request"
if grep -q "chat .*\[erased\]" "$tmp/out"; then failed=$((failed + 1)); echo "FAIL: a held party's content expired"; else passed=$((passed + 1)); fi
check "the trail of the run" 0 "$ihs" read '$retention' --data "$tmp/ret"
expect_in "run recorded" "$tmp/out" "retention run by dpo"
check "retention run, too early" 0 "$ihs" retention run --policy "$tmp/policy" --data "$tmp/ret" --now 2026-12-01T00:00:00Z --json
expect_in "nothing expires early" "$tmp/out" '"keys":0'
check "retention with a bad policy (2)" 2 "$ihs" retention run --policy "$tmp/key" --data "$tmp/ret"
expect_in "names the line" "$tmp/err" "retention policy, line 1"
check "the store still verifies" 0 "$ihs" verify --data "$tmp/ret"

# Over RPC: only an admin token erases, and the trail names the token's holder.
ihsd=$(dirname "$ihs")/ihsd
check "admin token" 0 "$ihs" token new --tokens "$tmp/tokens" --role admin --name dpo-admin
atok=$(cat "$tmp/out")
check "auditor token" 0 "$ihs" token new --tokens "$tmp/tokens" --role auditor --name auditor-1
utok=$(cat "$tmp/out")
check "append to the served store" 0 "$ihs" append --data "$tmp/served" <"$sample"
start_ihsd "$ihsd" "$tmp/served" "$tmp/tokens"
check "an auditor may not erase (6)" 6 "$ihs" erase customer-ada --connect "$addr" --token "$utok" --reason "asked"
check "--by is for --data only (2)" 2 "$ihs" erase customer-ada --connect "$addr" --token "$atok" --reason "asked" --by me
check "hold over RPC" 0 "$ihs" hold customer-ada --connect "$addr" --token "$atok" --reason "case 9"
check "erase under hold over RPC (7)" 7 "$ihs" erase customer-ada --connect "$addr" --token "$atok" --reason "asked"
check "lift over RPC" 0 "$ihs" hold customer-ada --lift --connect "$addr" --token "$atok" --reason "closed"
check "erase over RPC" 0 "$ihs" erase customer-ada --connect "$addr" --token "$atok" --reason "asked"
check "read the trail over RPC" 0 "$ihs" read customer-ada --connect "$addr" --token "$utok"
expect_in "the trail names the token's holder" "$tmp/out" "erasure by dpo-admin: asked"
expect_in "content erased over RPC" "$tmp/out" "[erased]"
check "an auditor may not back up (6)" 6 "$ihs" backup --connect "$addr" --token "$utok" --to "$tmp/rb0"
check "backup over RPC" 0 "$ihs" backup --connect "$addr" --token "$atok" --to "$tmp/rb" --with-master-key
expect_in "the remote copy is verified here" "$tmp/out" "events, verified"
check "backup over RPC needs an absolute path (2)" 2 "$ihs" backup --connect "$addr" --token "$atok" --to relative/dir
check "backup with --data beside the running ihsd" 0 "$ihs" backup --data "$tmp/served" --to "$tmp/rb2"
expect_in "the local copy is verified" "$tmp/out" "events, verified"
kill -TERM "$ihsd_pid"
wait "$ihsd_pid"
expect_in "ihsd logged the erasure" "$tmp/ihsd.err" "dpo-admin erases party customer-ada at position"

echo "audit_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
