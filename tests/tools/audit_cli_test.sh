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
check "foreign head (ihs)" 4 "$ihs" audit verify-head "$tmp/other-head" "$tmp/h2" --data "$data"
expect_in "foreign head says another store" "$tmp/err" "another store"
check "foreign head (ihs-verify)" 4 "$verify" head "$tmp/key" "$tmp/other-head"
check "not a head" 4 "$verify" head "$tmp/key" "$tmp/key"

echo "audit_cli_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
