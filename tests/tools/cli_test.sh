#!/usr/bin/env bash
# End-to-end test of the ihs command line: output, --json, and every documented exit code.
#   cli_test.sh IHS_BINARY REPO_ROOT
set -uo pipefail
ihs=$1
root=$2
source "$(dirname "$0")/checks.sh"
data=$tmp/data

sample=$root/tools/sample/history.jsonl

# Append and read back.
check "append sample" 0 "$ihs" append --data "$data" <"$sample"
expect_in "append summary" "$tmp/out" "appended 23 events (0 already stored)"
check "append again is idempotent" 0 "$ihs" append --data "$data" <"$sample"
expect_in "idempotent summary" "$tmp/out" "appended 0 events (23 already stored)"
check "read ada" 0 "$ihs" read --data "$data" customer-ada
expect_in "read shows the email" "$tmp/out" "Router drops the connection"
expect_in "read shows the tweet" "$tmp/out" "twitter"
check "read ada json" 0 "$ihs" read --data "$data" customer-ada --json
[ "$(wc -l <"$tmp/out")" -eq 8 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: json line count"; }
expect_in "json has content" "$tmp/out" '"text":"@company two days and not a word'
check "read backward limit" 0 "$ihs" read --data "$data" customer-ada --backward --limit 1 --json
expect_in "backward newest first" "$tmp/out" '"streamVersion":7'
check "read sealed" 0 "$ihs" read --data "$data" customer-ada --sealed
expect_in "sealed marker" "$tmp/out" "[sealed]"
check "tail" 0 "$ihs" tail --data "$data" --from 20 --json
[ "$(wc -l <"$tmp/out")" -eq 3 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: tail count"; }
check "stats json" 0 "$ihs" stats --data "$data" --json
expect_in "stats events" "$tmp/out" '"events":23'
check "verify" 0 "$ihs" verify --data "$data"
expect_in "verify ok" "$tmp/out" "ok: 23 events verified"
expect_not_in "no progress when stderr is not a terminal" "$tmp/err" "verify 23/23"
# On a terminal (a pseudo-terminal that script(1) makes), it shows.
script -qec "'$ihs' verify --data '$data'" /dev/null >"$tmp/tty" 2>&1
expect_in "verify progress on a terminal" "$tmp/tty" "verify 23/23 100.0%"
check "verify json" 0 "$ihs" verify --data "$data" --json
expect_in "verify json ok" "$tmp/out" '"ok":true'

# Expected versions through --stream.
ev='{"id":"00000000000000000000000000000abc","occurredAt":"2026-11-01T10:00:00Z","touchpoint":{"channel":"sms","direction":"inbound","type":"message"}}'
check "append with exact version" 0 "$ihs" append --data "$data" --stream customer-chloe --expected-version 5 <<<"$ev"
ev2=${ev/abc/abd}
check "stale version is a conflict (3)" 3 "$ihs" append --data "$data" --stream customer-chloe --expected-version 5 <<<"$ev2"
expect_in "conflict names current version" "$tmp/err" "current version is 6"
check "none on an existing stream (3)" 3 "$ihs" append --data "$data" --stream customer-chloe --expected-version none <<<"$ev2"
check "exists on a new stream (3)" 3 "$ihs" append --data "$data" --stream nobody --expected-version exists <<<"$ev2"

# Bad input: exit 2, nothing stored.
check "malformed json (2)" 2 "$ihs" append --data "$data" <<<'{"id": '
expect_in "names the line" "$tmp/err" "line 1"
check "an event without an id (2)" 2 "$ihs" append --data "$data" --stream x <<<'{"occurredAt":"2026-10-01T08:00:00Z","sourceSystem":"crm","touchpoint":{"channel":"email","direction":"inbound","type":"message"}}'
expect_in "says the id is required, why, and the way out" "$tmp/err" 'line 1: "id" is required: 16 bytes as 32 hex digits, the same each time the event is sent, so that a retried append is stored once; or pass --new-ids'
check "--new-ids makes one" 0 "$ihs" append --data "$tmp/newids" --new-ids --stream x <<<'{"occurredAt":"2026-10-01T08:00:00Z","sourceSystem":"crm","touchpoint":{"channel":"email","direction":"inbound","type":"message"}}'
expect_in "one event, in the singular" "$tmp/out" "appended 1 event (0 already stored); the log holds 1 event"
check "unknown channel (2)" 2 "$ihs" append --data "$data" --stream x <<<"${ev/sms/pigeon}"
expect_in "names the channel" "$tmp/err" "pigeon"
expect_in "names the field and the channels there are" "$tmp/err" 'touchpoint.channel: "pigeon" is not one of unspecified, letter, fax, email'
check "sentiment out of range (2)" 2 "$ihs" append --data "$data" --stream x <<<"${ev/\"message\"/\"message\",\"sentiment\":3}"
expect_in "names the range" "$tmp/err" "outside [-1, 1]"
check "missing stream id (2)" 2 "$ihs" append --data "$data" <<<"$ev2"
expect_in "names the stream id" "$tmp/err" "streamId is missing"
check "empty input (2)" 2 "$ihs" append --data "$data" </dev/null
check "a field where it does not belong (2)" 2 "$ihs" append --data "$data" --stream x <<<"${ev/\"touchpoint\"/\"sentiment\":0.5,\"touchpoint\"}"
expect_in "names the field and where it belongs" "$tmp/err" 'line 1: malformed event JSON: unknown field "sentiment" here (did you mean touchpoint.sentiment?)'
expect_not_in "no codec internals" "$tmp/err" "rejectUnknownFields"
# What the store refuses is numbered by input line too, as what the parser refuses.
printf '%s\n\n%s\n' "${ev/abc/e01}" '{"id":"00000000000000000000000000000e02","streamId":"x","touchpoint":{"channel":"sms","direction":"inbound","type":"message"}}' >"$tmp/noocc.jsonl"
check "an event without occurredAt (2)" 2 "$ihs" append --data "$data" --stream x <"$tmp/noocc.jsonl"
expect_in "numbered by line, not by event" "$tmp/err" "line 3 (stream x): occurredAt is missing"
sed -i 's/^{"id":"00000000000000000000000000000e01",/{"id":"00000000000000000000000000000e01","streamId":"y",/' "$tmp/noocc.jsonl"
check "an event without occurredAt, by streamId (2)" 2 "$ihs" append --data "$data" <"$tmp/noocc.jsonl"
expect_in "numbered by line in a multi-stream append" "$tmp/err" "line 3 (stream x): occurredAt is missing"
check "same id, other content (2)" 2 "$ihs" append --data "$data" --stream customer-chloe <<<"${ev/inbound/outbound}"
check "read unknown stream (2)" 2 "$ihs" read --data "$data" nobody
expect_in "no such stream" "$tmp/err" "no such stream"
check "tail past the end (2)" 2 "$ihs" tail --data "$data" --from 999
check "read past the stream's end (2), as tail" 2 "$ihs" read customer-ada --data "$data" --from 999
expect_in "says where the stream ends" "$tmp/err" "is past the end of customer-ada"
check "read at the stream's end: nothing, ok" 0 "$ihs" read customer-ada --data "$data" --from 8 --json
[ ! -s "$tmp/out" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: read at the stream's end printed events"; }
check "stats after bad input" 0 "$ihs" stats --data "$data" --json
expect_in "still 24 events" "$tmp/out" '"events":24'

# A load of more than one chunk (10,000 events) shows progress and lands whole.
awk 'BEGIN { for (i = 0; i < 12000; i++)
  printf "{\"id\":\"%032x\",\"streamId\":\"load-%d\",\"occurredAt\":%d,\"touchpoint\":{\"channel\":\"app\",\"direction\":\"inbound\",\"type\":\"like\"}}\n", 1000000 + i, i % 50, 1700000000000000 + i }' >"$tmp/load.jsonl"
check "bulk append" 0 "$ihs" append --data "$tmp/load" <"$tmp/load.jsonl"
expect_not_in "bulk: no progress off a terminal" "$tmp/err" "append 12000/12000"
expect_in "bulk summary" "$tmp/out" "appended 12000 events"

# Usage: exit 1.
check "no subcommand (1)" 1 "$ihs"
check "--version" 0 "$ihs" --version
expect_in "says the version" "$tmp/out" "ihs 0."
check "an unknown command (1)" 1 "$ihs" frobnicate
expect_in "names the unknown command and the commands" "$tmp/err" 'ihs has no command "frobnicate"; its commands: append'
check "an unknown command of a group (1)" 1 "$ihs" segments frob
expect_in "names the group's commands" "$tmp/err" 'ihs segments has no command "frob"; its commands: define, change'
# Bash completion, made from the command definitions: commands, a group's commands, flags.
check "completion for bash" 0 "$ihs" completion bash
cp "$tmp/out" "$tmp/completion.bash"
complete_ihs() { bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _ihs; echo "${COMPREPLY[*]}"' _ "$tmp/completion.bash" "$@"; }
[ "$(complete_ihs ihs seg)" = "segments" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: completion of 'ihs seg': $(complete_ihs ihs seg)"; }
[ "$(complete_ihs ihs segments m)" = "members" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: completion of 'ihs segments m'"; }
[ "$(complete_ihs ihs segments members churn --li)" = "--limit" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: completion of a flag after an argument"; }
check "completion for another shell (2)" 2 "$ihs" completion fish
# The manual page, made from the same definitions: every command and its flags, and no roff
# warnings.
check "man" 0 "$ihs" man
cp "$tmp/out" "$tmp/ihs.1"
expect_in "a section per command" "$tmp/ihs.1" '.SS "ihs segments members"'
expect_in "a flag as typed" "$tmp/ihs.1" '\-\-as\-of'
expect_in "the exit codes" "$tmp/ihs.1" "4 integrity failure"
for cmd in $("$ihs" --help | sed -n '/^Subcommands:/,/^$/p' | awk 'NR>1 && NF {print $1}'); do
  grep -qF ".SS \"ihs $cmd\"" "$tmp/ihs.1" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: the man page lacks ihs $cmd"; }
done
groff -man -ww -z "$tmp/ihs.1" >"$tmp/groff.err" 2>&1
[ ! -s "$tmp/groff.err" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: groff warns:"; head -3 "$tmp/groff.err"; }
check "unknown flag (1)" 1 "$ihs" read --data "$data" customer-ada --frobnicate
check "bad expected version (2)" 2 "$ihs" append --data "$data" --stream s --expected-version soon <<<"$ev2"
check "help (0)" 0 "$ihs" --help
expect_in "help lists exit codes" "$tmp/out" "4 integrity failure"

# Store unavailable: exit 5.
mkdir -p "$tmp/photos" && echo jpeg >"$tmp/photos/a.jpg"
check "not an ihs store (5)" 5 "$ihs" append --data "$tmp/photos" <"$sample"
expect_in "says so" "$tmp/err" "not an ihs store"
check "no store there (5)" 5 "$ihs" read --data "$tmp/none" customer-ada
head -c 64 /dev/zero | tr '\0' 'b' >"$tmp/wrong.key"
check "wrong master key (5)" 5 "$ihs" read --data "$data" customer-ada --master-key "$tmp/wrong.key"
expect_in "names the key" "$tmp/err" "not the key"

# Integrity failure: exit 4. The appends above reopened the store, which flushed the log into
# SST files; flip one byte inside the first data block of the largest (the events).
cp -r "$data" "$tmp/broken"
sst=$(ls -S "$tmp/broken"/db/*.sst | head -1)
printf '\xff' | dd of="$sst" bs=1 seek=200 count=1 conv=notrunc 2>/dev/null
check "verify a damaged store (4)" 4 "$ihs" verify --data "$tmp/broken"
check "verify json on a damaged store (4)" 4 "$ihs" verify --data "$tmp/broken" --json
expect_in "json says not ok" "$tmp/out" '"ok":false'
# ihs generate: output, bad input, and nothing overwritten without --force.
gen=(generate --parties 200 --days 14 --seed 5)
check "generate to a file" 0 "$ihs" "${gen[@]}" --out "$tmp/g.jsonl" --truth "$tmp/g.truth.json"
expect_in "says where" "$tmp/out" "into $tmp/g.jsonl"
check "generated lines append" 0 "$ihs" append --data "$tmp/gdata" <"$tmp/g.jsonl"
expect_in "truth names the story" "$tmp/g.truth.json" '"party":"customer-ada"'
cp "$tmp/g.jsonl" "$tmp/g.before"
check "--parties 0 (2)" 2 "$ihs" generate --parties 0 --days 14 --out "$tmp/x.jsonl"
expect_in "names --parties" "$tmp/err" "--parties 0 is out of range"
check "negative --days (2)" 2 "$ihs" generate --parties 100 --days -3 --out "$tmp/x.jsonl"
expect_in "names --days" "$tmp/err" "--days -3 is out of range"
check "absurd --parties (2)" 2 "$ihs" generate --parties 999999999999 --days 3 --out "$tmp/x.jsonl"
check "neither --data nor --out: usage (1)" 1 "$ihs" generate --parties 100 --days 3
check "existing --out without --force (2)" 2 "$ihs" generate --parties 100 --days 3 --seed 9 --out "$tmp/g.jsonl"
expect_in "says --force" "$tmp/err" "--force"
cmp -s "$tmp/g.jsonl" "$tmp/g.before" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: --out was overwritten"; }
check "unwritable --out (2)" 2 "$ihs" "${gen[@]}" --out "$tmp/no/such/dir/g.jsonl"
expect_in "names the path" "$tmp/err" "$tmp/no/such/dir/g.jsonl"
check "generate into a store" 0 "$ihs" "${gen[@]}" --data "$tmp/gstore" --json
expect_in "json summary" "$tmp/out" '"alreadyPresent":0'
"$ihs" stats --data "$tmp/gstore" --json | grep -o '"events":[0-9]*\|"root":"[0-9a-f]*"' >"$tmp/stats.before"
check "same history again: nothing to do" 0 "$ihs" "${gen[@]}" --data "$tmp/gstore" --json
expect_in "all present" "$tmp/out" '"written":0'
# What a user appends after it (the demo suggests an append) does not make it another history.
check "append after the generated history" 0 "$ihs" append --data "$tmp/gstore" --stream customer-new <<<'{"id":"de300000000000000000000000000001","occurredAt":"2026-02-02T10:00:00Z","touchpoint":{"channel":"chat","direction":"inbound","type":"message"}}'
check "same history after an append: nothing to do" 0 "$ihs" "${gen[@]}" --data "$tmp/gstore" --json
expect_in "all present after the append" "$tmp/out" '"written":0'
"$ihs" stats --data "$tmp/gstore" --json | grep -o '"events":[0-9]*\|"root":"[0-9a-f]*"' >"$tmp/stats.before"
check "another --ends is another history (2)" 2 "$ihs" "${gen[@]}" --ends 2027-03-01 --data "$tmp/gstore"
expect_in "says --ends" "$tmp/err" "different history (other seed, parties, days or --ends"
check "--ends not a date (2)" 2 "$ihs" "${gen[@]}" --ends 2027-02-30 --out "$tmp/e.jsonl"
expect_in "names --ends" "$tmp/err" '--ends "2027-02-30" is not a date'
check "--ends moves the history" 0 "$ihs" "${gen[@]}" --ends 2027-03-01 --out "$tmp/e.jsonl" --truth "$tmp/e.truth.json"
expect_in "starts 14 days before" "$tmp/e.truth.json" '"start":"2027-02-15T00:00:00.000000Z"'
expect_in "is as of the date" "$tmp/e.truth.json" '"as_of":"2027-03-01T00:00:00.000000Z"'
check "another history into it (2)" 2 "$ihs" generate --parties 200 --days 14 --seed 6 --data "$tmp/gstore"
expect_in "says different history" "$tmp/err" "different history"
"$ihs" stats --data "$tmp/gstore" --json | grep -o '"events":[0-9]*\|"root":"[0-9a-f]*"' >"$tmp/stats.after"
cmp -s "$tmp/stats.before" "$tmp/stats.after" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: the store changed"; }
check "--force replaces it" 0 "$ihs" generate --parties 200 --days 14 --seed 6 --data "$tmp/gstore" --force
expect_in "says replaced" "$tmp/err" "replaced the store"
check "the new store verifies" 0 "$ihs" verify --data "$tmp/gstore"

# Against a running ihsd: the same commands with --connect, the same output.
ihsd=$(dirname "$ihs")/ihsd
check "token with a bad role (2)" 2 "$ihs" token new --tokens "$tmp/tokens" --role boss --name x
check "reader token" 0 "$ihs" token new --tokens "$tmp/tokens" --role reader --name cli-reader
rtok=$(cat "$tmp/out")
check "writer token" 0 "$ihs" token new --tokens "$tmp/tokens" --role writer --name cli-writer --json
wtok=$(grep -o '"token":"[0-9a-f]*"' "$tmp/out" | cut -d'"' -f4)
check "admin token" 0 "$ihs" token new --tokens "$tmp/tokens" --role admin --name cli-admin
atok=$(cat "$tmp/out")
expect_in "only hashes are stored" <(grep -c "$rtok\|$wtok\|$atok" "$tmp/tokens") "0"
start_ihsd "$ihsd" "$tmp/served" "$tmp/tokens"
check "append over RPC" 0 "$ihs" append --connect "$addr" --token "$wtok" <"$sample"
check "read over RPC" 0 "$ihs" read --connect "$addr" --token "$rtok" customer-ada
cp "$tmp/out" "$tmp/remote.txt"
check "read the served store locally" 0 "$ihs" read --data "$tmp/served" customer-ada
cmp -s "$tmp/out" "$tmp/remote.txt" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: remote and local read differ"; }
check "tail json over RPC (token from the environment)" 0 env IHS_TOKEN="$rtok" "$ihs" tail --connect "$addr" --from 0 --json
cp "$tmp/out" "$tmp/remote.json"
check "tail json locally" 0 "$ihs" tail --data "$tmp/served" --from 0 --json
cmp -s "$tmp/out" "$tmp/remote.json" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: remote and local tail differ"; }
check "a reader may not append (6)" 6 "$ihs" append --connect "$addr" --token "$rtok" <"$sample"
expect_in "says what the role lacks and who has it" "$tmp/err" "a reader token cannot ask for appends, links or segment definitions; a writer or admin token can"
expect_not_in "no Cap'n Proto internals" "$tmp/err" "requestedTypeId"
check "a writer may not read timelines (6)" 6 "$ihs" timeline customer-ada --connect "$addr" --token "$wtok"
expect_in "the writer is told who reads" "$tmp/err" "a writer token cannot ask for timelines, identity, segments, community or subscriptions; a reader, auditor or admin token can"
check "wrong token (6)" 6 "$ihs" read --connect "$addr" --token nope customer-ada
check "no token (6)" 6 env IHS_TOKEN= "$ihs" read --connect "$addr" customer-ada
expect_in "says no token was given" "$tmp/err" "no token was given"
check "conflict over RPC (3)" 3 "$ihs" append --connect "$addr" --token "$wtok" --stream customer-ada --expected-version none <<<"$ev2"
check "malformed over RPC (2)" 2 "$ihs" append --connect "$addr" --token "$wtok" <<<'{"id": '
check "unknown stream over RPC (2)" 2 "$ihs" read --connect "$addr" --token "$rtok" nobody
check "both --data and --connect: usage (1)" 1 "$ihs" read --connect "$addr" --data "$data" --token "$rtok" nobody
check "tail -f needs --connect: usage (1)" 1 "$ihs" tail -f --data "$data"
check "--expected-version needs --stream: usage (1)" 1 "$ihs" append --data "$data" --expected-version 3 <<<"$ev2"
expect_in "says what it needs" "$tmp/err" "--expected-version needs --stream"
check "--as-of and --position: usage (1)" 1 "$ihs" audit replay customer-ada --data "$data" --as-of 2026-01-01T00:00:00Z --position 3
check "an unknown flag: usage (1)" 1 "$ihs" read customer-ada --data "$data" --frobnicate
timeout 5 "$ihs" tail -f --connect "$addr" --token "$rtok" --limit 1 >"$tmp/follow.txt" 2>&1 &
follow_pid=$!
sleep 1
check "append while following" 0 "$ihs" append --connect "$addr" --token "$wtok" --stream live-one <<<"$ev2"
for _ in $(seq 50); do grep -q live-one "$tmp/follow.txt" && break; sleep 0.1; done
expect_in "tail -f shows the new event" "$tmp/follow.txt" "live-one"
kill "$follow_pid" 2>/dev/null; wait "$follow_pid" 2>/dev/null
# Segment definitions over RPC (before the timelines compared below, which must see one log).
check "define a segment over RPC" 0 "$ihs" segments define loyal 'count(type=purchase) >= 5' --connect "$addr" --token "$wtok"
check "a reader may not define (6)" 6 "$ihs" segments define x 'any()' --connect "$addr" --token "$rtok"
check "a rule that does not parse over RPC (2)" 2 "$ihs" segments define x 'any(' --connect "$addr" --token "$wtok"
expect_in "says where over RPC" "$tmp/err" "rule: at 5: expected a touchpoint field"
check "segments over RPC" 0 "$ihs" segments list --connect "$addr" --token "$rtok" --json
expect_in "by the writer's token" "$tmp/out" '"requestedBy":"cli-writer"'
# Membership over RPC: ada complained, by email and on Twitter.
check "define complained over RPC" 0 "$ihs" segments define complained 'count(type = complaint) >= 2' --connect "$addr" --token "$wtok"
check "members over RPC" 0 "$ihs" segments members complained --connect "$addr" --token "$rtok" --json
expect_in "ada is a member over RPC" "$tmp/out" '"person":"customer-ada"'
check "of over RPC" 0 "$ihs" segments of customer-ada --connect "$addr" --token "$rtok"
expect_in "ada's segments over RPC" "$tmp/out" "complained"
check "why over RPC" 0 "$ihs" segments why customer-ada complained --connect "$addr" --token "$rtok"
expect_in "why names the clause" "$tmp/out" "yes count(type = complaint) >= 2: 2"
check "watch from the feed's start" 0 timeout 10 "$ihs" segments watch complained --from-seq 0 --limit 1 --connect "$addr" --token "$rtok"
expect_in "watch shows ada's entry" "$tmp/out" "entered complained"
check "watch json" 0 timeout 10 "$ihs" segments watch complained --from-seq 0 --limit 1 --json --connect "$addr" --token "$rtok"

expect_in "watch json names the person" "$tmp/out" '"person":"customer-ada"'

# Community over RPC (docs/community.md): ada's tweet (4,200), dan's share of it (980), her
# review (310).
check "community of a party over RPC" 0 "$ihs" community customer-ada --connect "$addr" --token "$rtok"
expect_in "her reach counts the share" "$tmp/out" "reach        5490"
expect_in "dan carried it" "$tmp/out" "customer-dan"
check "community top over RPC" 0 "$ihs" community top --n 3 --json --connect "$addr" --token "$rtok"
expect_in "ada leads" "$tmp/out" '"entries":[{"carried":1,"maxDepth":1,"person":"customer-ada","posts":2,"rank":1,"reach":5490,"risk":4690.0,"standing":1.85,"value":5078.25}'
check "community top by standing over RPC" 0 "$ihs" community top --by standing --connect "$addr" --token "$rtok"
expect_in "ada stands first: dan carried her" "$tmp/out" "1  customer-ada"
expect_in "dan is in the graph too" "$tmp/out" "2  customer-dan"
check "community of ada shows what is at risk" 0 "$ihs" community customer-ada --connect "$addr" --token "$rtok"
expect_in "her tweet took her email public" "$tmp/out" "at risk      4690: the audience if they take a message public (their own 4200, and 490 carried per post); the chance they do: 0.29 (1 of 2 taken public)"
check "community top by value over RPC" 0 "$ihs" community top --by value --json --connect "$addr" --token "$rtok"
expect_in "only ada has posts of her own" "$tmp/out" '"valuePersons":1'
check "community of nobody over RPC (2)" 2 "$ihs" community nobody --connect "$addr" --token "$rtok"
# A segment on a community figure: ihsd's band appender publishes who is inside on $community,
# and the segments projection follows (docs/community.md "Bands").
check "define heard over RPC" 0 "$ihs" segments define heard 'community reach > 5000 and any(type = review)' --connect "$addr" --token "$wtok"
for _ in $(seq 100); do
  "$ihs" segments members heard --connect "$addr" --token "$rtok" --json > "$tmp/out" 2>/dev/null || true
  grep -q '"person":"customer-ada"' "$tmp/out" && break
  sleep 0.1
done
expect_in "ihsd published ada's band: she is heard" "$tmp/out" '"person":"customer-ada"'
check "why heard over RPC" 0 "$ihs" segments why customer-ada heard --connect "$addr" --token "$rtok"
expect_in "why names the community clause" "$tmp/out" "yes community reach > 5000"
check "publish is for a data directory (2)" 2 "$ihs" community publish --connect "$addr" --token "$wtok"
expect_in "says ihsd does it" "$tmp/err" "ihsd publishes the bands itself"
check "a writer may not read community (6)" 6 "$ihs" community top --connect "$addr" --token "$wtok"
check "top by an unknown figure: usage (1)" 1 "$ihs" community top --by fame --connect "$addr" --token "$rtok"
expect_in "names what it ranks by" "$tmp/err" "--by fame is not one the community projection ranks by: reach, standing, value, risk"
check "community without a party: usage (1)" 1 "$ihs" community --connect "$addr" --token "$rtok"
check "watch needs --connect: usage (1)" 1 "$ihs" segments watch complained --data "$data"
check "watch an unknown segment (2)" 2 timeout 10 "$ihs" segments watch nobody --connect "$addr" --token "$rtok"
check "members of an unknown segment over RPC (2)" 2 "$ihs" segments members nobody --connect "$addr" --token "$rtok"
check "as of before the segment over RPC (2)" 2 "$ihs" segments members complained --as-of 2020-01-01T00:00:00Z --connect "$addr" --token "$rtok"
expect_in "says when it was defined" "$tmp/err" "was first defined at"
check "as of a moment to come (2)" 2 "$ihs" segments members complained --as-of 2999-01-01T00:00:00Z --connect "$addr" --token "$rtok"
expect_in "says it is not known yet" "$tmp/err" "is in the future: membership then is not known yet"
# The timeline and the projection workers over RPC.
check "timeline over RPC" 0 "$ihs" timeline customer-ada --connect "$addr" --token "$rtok"
expect_in "remote timeline: the email answered on twitter" "$tmp/out" "answered on twitter after 2d23h"
expect_in "the timeline shows what each entry says" "$tmp/out" '"@company two days and not a word about my broken…"'
check "timeline json over RPC" 0 "$ihs" timeline customer-ada --connect "$addr" --token "$rtok" --json
expect_in "remote timeline has the tweet's text" "$tmp/out" '"text":"@company two days and not a word'
expect_in "sentiment as stored" "$tmp/out" '"sentiment":-0.6,'
expect_not_in "no float widened to double" "$tmp/out" '"sentiment":-0.6000'
# Waiting times and the summary's moment are counted to "now": drop them to compare.
sed -E 's/"(waitingSeconds|asOf)":("[^"]*"|[0-9]+)//g' "$tmp/out" >"$tmp/remote-timeline.json"
check "timeline of nobody over RPC (2)" 2 "$ihs" timeline nobody --connect "$addr" --token "$rtok"
expect_in "no such party over RPC" "$tmp/err" "no such party: nobody"
check "projections status over RPC" 0 "$ihs" projections status --connect "$addr" --token "$rtok" --json
expect_in "status names the timeline" "$tmp/out" '"name":"timeline"'
expect_in "the timeline is live" "$tmp/out" '"state":"live"'
check "a reader may not rebuild (6)" 6 "$ihs" projections rebuild timeline --connect "$addr" --token "$rtok"
expect_in "an admin token can" "$tmp/err" "a reader token cannot ask for server status, rebuilds or erasure; an admin token can"
check "rebuild of an unknown projection (2)" 2 "$ihs" projections rebuild nope --connect "$addr" --token "$atok"
expect_in "names the projections there are" "$tmp/err" "there are: timeline"
check "rebuild over RPC" 0 "$ihs" projections rebuild timeline --connect "$addr" --token "$atok"
expect_in "rebuilt into a new generation" "$tmp/out" "now timeline@2"
# Beside the ihsd that holds the data directory: the projections as it keeps them, read-only.
check "timeline beside ihsd" 0 "$ihs" timeline customer-ada --data "$tmp/served"
expect_in "the local timeline beside ihsd" "$tmp/out" "answered on twitter after 2d23h"
check "segments of beside ihsd" 0 "$ihs" segments of customer-ada --data "$tmp/served"
expect_in "ada's segments beside ihsd" "$tmp/out" "complained"
check "a rebuild beside ihsd is refused (5)" 5 "$ihs" projections rebuild timeline --data "$tmp/served"
expect_in "says to rebuild through ihsd" "$tmp/err" "rebuild through it: ihs projections rebuild timeline --connect"
check "an append beside ihsd is refused (5)" 5 "$ihs" append --data "$tmp/served" --stream beside <<<"$ev2"
expect_in "says another process holds it" "$tmp/err" "already open by another process"
expect_in "and how to write through ihsd" "$tmp/err" "go through ihsd: --connect HOST:PORT"
# Tokens: the holders are listed, never the hashes; a revoked token is refused once ihsd has
# read the file again (SIGHUP), and the other tokens still work.
check "token list" 0 "$ihs" token list --tokens "$tmp/tokens"
expect_in "lists the reader" "$tmp/out" "reader   cli-reader"
expect_not_in "lists no hash" "$tmp/out" "$(printf %s "$rtok" | sha256sum | cut -d' ' -f1)"
check "token list json" 0 "$ihs" token list --tokens "$tmp/tokens" --json
expect_in "json names role and holder" "$tmp/out" '{"role":"writer","name":"cli-writer"}'
check "revoke a holder with no token (2)" 2 "$ihs" token revoke nobody --tokens "$tmp/tokens"
expect_in "says whose" "$tmp/err" 'no token of "nobody"'
check "revoke the reader" 0 "$ihs" token revoke cli-reader --tokens "$tmp/tokens"
expect_in "says what a running ihsd needs" "$tmp/err" "SIGHUP"
check "the reader's token still works before SIGHUP" 0 "$ihs" read --connect "$addr" --token "$rtok" customer-ada
# A session open with the revoked token: SIGHUP ends it, and logging in again is refused.
timeout 30 "$ihs" tail -f --connect "$addr" --token "$rtok" --limit 1 >"$tmp/revoked.txt" 2>"$tmp/revoked.err" &
revoked_pid=$!
for _ in $(seq 50); do [ -s "$tmp/revoked.txt" ] && break; sleep 0.1; done
kill -HUP "$ihsd_pid"
for _ in $(seq 50); do grep -q "SIGHUP: 2 tokens" "$tmp/ihsd.err" && break; sleep 0.1; done
expect_in "ihsd read the tokens again" "$tmp/ihsd.err" "SIGHUP: 2 tokens from"
expect_in "and ended the revoked token's session" "$tmp/ihsd.err" "ended 1 connection(s) of revoked tokens"
wait "$revoked_pid"
revoked_rc=$?
[ "$revoked_rc" -eq 6 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: tail -f with a revoked token: exit $revoked_rc, want 6"; cat "$tmp/revoked.err"; }
expect_in "the follower is told its token is gone" "$tmp/revoked.err" "no such token"
# A token with an expiry logs in until then, and its session ends when it passes.
check "an expiry in the past (2)" 2 "$ihs" token new --tokens "$tmp/tokens" --role reader --name late --expires 2020-01-01T00:00:00Z
expect_in "says it could never log in" "$tmp/err" "is in the past"
check "a bad expiry (2)" 2 "$ihs" token new --tokens "$tmp/tokens" --role reader --name late --expires soon
expect_in "says what an expiry is" "$tmp/err" "give a moment (2027-01-31T00:00:00Z) or a span (90d, 12h, 30m)"
check "a token that expires in 4 s" 0 "$ihs" token new --tokens "$tmp/tokens" --role reader --name brief --expires 4s --json
etok=$(grep -o '"token":"[0-9a-f]*"' "$tmp/out" | cut -d'"' -f4)
expect_in "the expiry is printed" "$tmp/out" '"expires":"'
check "token list shows the expiry" 0 "$ihs" token list --tokens "$tmp/tokens"
expect_in "listed with its expiry" "$tmp/out" "brief  expires "
kill -HUP "$ihsd_pid"
for _ in $(seq 50); do grep -q "SIGHUP: 3 tokens" "$tmp/ihsd.err" && break; sleep 0.1; done
timeout 30 "$ihs" tail -f --connect "$addr" --token "$etok" --limit 1 >"$tmp/expiring.txt" 2>"$tmp/expiring.err" &
expiring_pid=$!
wait "$expiring_pid"
expiring_rc=$?
[ "$expiring_rc" -eq 6 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: tail -f past its token's expiry: exit $expiring_rc, want 6"; cat "$tmp/expiring.err"; }
[ -s "$tmp/expiring.txt" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: the token did not work before it expired"; cat "$tmp/expiring.err"; }
expect_in "the follower is told its token expired" "$tmp/expiring.err" "the token expired at"
expect_in "ihsd logs the expiry" "$tmp/ihsd.err" "the token of brief expired at"
check "an expired token is refused (6)" 6 "$ihs" read --connect "$addr" --token "$etok" customer-ada
check "a revoked token is refused (6)" 6 "$ihs" read --connect "$addr" --token "$rtok" customer-ada
check "the admin's token still works" 0 "$ihs" read --connect "$addr" --token "$atok" customer-ada
kill -TERM "$ihsd_pid"
wait "$ihsd_pid"
ihsd_rc=$?
[ "$ihsd_rc" -eq 0 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: ihsd exit $ihsd_rc after SIGTERM"; }
expect_in "ihsd says it stopped" "$tmp/ihsd.err" "stopped"
check "timeline json locally" 0 "$ihs" timeline customer-ada --data "$tmp/served" --json
sed -E 's/"(waitingSeconds|asOf)":("[^"]*"|[0-9]+)//g' "$tmp/out" >"$tmp/local-timeline.json"
cmp -s "$tmp/local-timeline.json" "$tmp/remote-timeline.json" && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: remote and local timeline differ"; diff "$tmp/local-timeline.json" "$tmp/remote-timeline.json" | head -5; }
check "nothing listens any more (5)" 5 "$ihs" read --connect "$addr" --token "$rtok" customer-ada
check "bad address (2)" 2 "$ihs" read --connect "no such host:x" --token "$rtok" customer-ada
# tail -f outlives a restart of ihsd: it connects again, backing off, and resumes after the last
# event it printed (nothing twice, nothing missed).
start_ihsd "$ihsd" "$tmp/served" "$tmp/tokens"
timeout 60 "$ihs" tail -f --connect "$addr" --token "$atok" --limit 1 >"$tmp/follow2.txt" 2>"$tmp/follow2.err" &
follow_pid=$!
check "append before the restart" 0 "$ihs" append --connect "$addr" --token "$wtok" --stream before-restart <<<"${ev2/abd/b01}"
for _ in $(seq 50); do grep -q before-restart "$tmp/follow2.txt" && break; sleep 0.1; done
kill -TERM "$ihsd_pid"
wait "$ihsd_pid"
"$ihsd" --data "$tmp/served" --listen "$addr" --tokens "$tmp/tokens" >"$tmp/ihsd.out" 2>"$tmp/ihsd.err" &
ihsd_pid=$!
for _ in $(seq 100); do grep -q ready "$tmp/ihsd.out" && break; sleep 0.1; done
check "append after the restart" 0 "$ihs" append --connect "$addr" --token "$wtok" --stream after-restart <<<"${ev2/abd/b02}"
for _ in $(seq 100); do grep -q after-restart "$tmp/follow2.txt" && break; sleep 0.1; done
expect_in "tail -f shows the event after the restart" "$tmp/follow2.txt" "after-restart"
expect_in "tail -f says it connects again" "$tmp/follow2.err" "connecting again in"
[ "$(grep -c before-restart "$tmp/follow2.txt")" -eq 1 ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: tail -f printed an event twice across the restart"; }
kill "$follow_pid" 2>/dev/null; wait "$follow_pid" 2>/dev/null
kill -TERM "$ihsd_pid"
wait "$ihsd_pid"

# Identity: who is who, and an operator's decisions (docs/identity.md).
check "identity stats json" 0 "$ihs" identity stats --data "$data" --json
expect_in "counts streams" "$tmp/out" '"streams":'
check "link two streams" 0 "$ihs" identity link customer-bert customer-dan --reason "one person" --data "$data" --json
expect_in "on \$identity" "$tmp/out" '"stream":"$identity"'
check "the person shows both" 0 "$ihs" identity show customer-dan --data "$data" --json
expect_in "names bert" "$tmp/out" '"customer-bert"'
check "timeline of the person" 0 "$ihs" timeline customer-dan --person --data "$data" --json
expect_in "covers both streams" "$tmp/out" '"streams":["customer-dan","customer-bert"]'
check "read names the person" 0 "$ihs" read customer-dan --data "$data"
expect_in "one of bert's streams" "$tmp/out" "customer-dan is one of the streams of person customer-bert (customer-bert, customer-dan)"
check "read json: events only" 0 "$ihs" read customer-dan --data "$data" --json
if grep -qv '"streamId":"customer-dan"' "$tmp/out"; then
  failed=$((failed + 1)) && echo "FAIL: read --json printed a line that is not an event of the stream"
else
  passed=$((passed + 1))
fi
check "link with itself (2)" 2 "$ihs" identity link customer-bert customer-bert --reason x --data "$data"
check "link to a missing stream (2)" 2 "$ihs" identity link customer-bert nobody --reason x --data "$data"
expect_in "names it" "$tmp/err" 'no such stream: "nobody"'
check "link without a reason (1)" 1 "$ihs" identity link customer-bert customer-dan --data "$data"
check "unlink of streams not linked (2)" 2 "$ihs" identity unlink customer-bert customer-chloe --reason x --data "$data"
check "unlink" 0 "$ihs" identity unlink customer-bert customer-dan --reason "two people" --data "$data"
check "a suggestion that does not exist (2)" 2 "$ihs" identity accept 000000000000 --data "$data"
check "a handle that does not parse (2)" 2 "$ihs" identity show "+49 30 12x4567" --data "$data"
check "identity resolve json" 0 "$ihs" identity resolve --data "$data" --json
expect_in "says what it appended" "$tmp/out" '"appended":'
check "erase dan" 0 "$ihs" erase customer-dan --reason "asked to" --data "$data"
check "link to an erased party (7)" 7 "$ihs" identity link customer-bert customer-dan --reason x --data "$data"

# Community on the data directory: dan, who shared ada's tweet, is erased by now; his share
# stays in her reach, and he is only an anonymous count.
check "community of a party" 0 "$ihs" community customer-ada --data "$data" --json
expect_in "her reach" "$tmp/out" '"reach":5490'
expect_in "dan is an anonymous count" "$tmp/out" '"anonymousIn":1'
expect_not_in "dan is not named" "$tmp/out" 'customer-dan'
check "community top --n 0 (1)" 1 "$ihs" community top --n 0 --data "$data"
# An open complaint: the timeline says what is at risk if ada takes it public (community's
# audience at risk: her own 4,200 and dan's 980 carried over her 2 posts; the chance of it, 1 of
# her 2 waiting messages taken public under the prior).
check "ada complains again" 0 "$ihs" append --data "$data" --stream customer-ada <<<'{"id":"5a3e00000000000000000000000000aa","occurredAt":"2026-10-20T10:00:00Z","touchpoint":{"channel":"email","direction":"inbound","type":"complaint"}}'
check "timeline with an open complaint" 0 "$ihs" timeline customer-ada --data "$data"
expect_in "the summary says what is at risk" "$tmp/out" "at risk: an audience of 4690 if an open message is taken public (chance 0.25, 2745 reached per post): ihs community customer-ada"
expect_in "next to the open message" "$tmp/out" "4690 at risk"
check "timeline json with an open complaint" 0 "$ihs" timeline customer-ada --data "$data" --json
expect_in "atRisk in json" "$tmp/out" '"atRisk":{"audience":4690.0,"publicChance":0.25,"reachPerPost":2745.0}'
check "the page says it too" 0 "$ihs" timeline customer-ada --data "$data" --html "$tmp/ada-risk.html"
expect_in "at risk on the page" "$tmp/ada-risk.html" "At risk: an audience of <b>4690</b>"

# Segment definitions (docs/segments.md): events on $segments, checked before they are appended.
check "no segments yet" 0 "$ihs" segments list --data "$data"
expect_in "says so" "$tmp/out" "no live segments"
check "define a segment" 0 "$ihs" segments define churn_risk 'count(type=complaint, last 30d) >= 2' --description "two complaints" --data "$data" --json
expect_in "on \$segments" "$tmp/out" '"stream":"$segments"'
check "change it" 0 "$ihs" segments change churn_risk 'count(type = complaint, last 60d) >= 2' --data "$data"
check "list json" 0 "$ihs" segments list --data "$data" --json
expect_in "canonical rule, version 2" "$tmp/out" '"rule":"count(type = complaint, last 60d) >= 2","version":2'
expect_in "the description stays" "$tmp/out" '"description":"two complaints","name":"churn_risk"'
check "define loud on a community figure" 0 "$ihs" segments define loud 'community reach >= 5000' --data "$data"
check "a community condition that does not parse (2)" 2 "$ihs" segments define x 'community reach < 5' --data "$data"
expect_in "says what it expected" "$tmp/err" 'expected "in top N%", ">" or ">=" after the community figure'
check "publish the bands" 0 "$ihs" community publish --data "$data" --json
expect_in "ada's band appended" "$tmp/out" '"appended":1,'
check "publish again: nothing to do" 0 "$ihs" community publish --data "$data" --json
expect_in "nothing appended" "$tmp/out" '"appended":0,'
check "read the bands" 0 "$ihs" read --data "$data" '$community'
expect_in "ada is inside, with her figure" "$tmp/out" 'customer-ada inside "community reach >= 5000" (5490, rank 1 of 1)'
check "loud members" 0 "$ihs" segments members loud --data "$data"
expect_in "ada is loud" "$tmp/out" "customer-ada"
check "a rule that does not parse (2)" 2 "$ihs" segments define x 'count(type = complant) >= 1' --data "$data"
expect_in "says where" "$tmp/err" 'rule: at 14: unknown type "complant"'
check "a name taken (2)" 2 "$ihs" segments define churn_risk 'any()' --data "$data"
check "a bad name (2)" 2 "$ihs" segments define Churn 'any()' --data "$data"
check "an unknown segment named (2)" 2 "$ihs" segments define x 'segment(nobody)' --data "$data"
check "a window of 0 (2)" 2 "$ihs" segments define x 'count(last 0d) >= 1' --data "$data"
check "retire an unknown segment (2)" 2 "$ihs" segments retire nobody --data "$data"
check "a rule is required (1)" 1 "$ihs" segments define x --data "$data"
check "members" 0 "$ihs" segments members churn_risk --data "$data"
expect_in "members says how many" "$tmp/out" "segment churn_risk: "
check "define complained" 0 "$ihs" segments define complained 'count(type = complaint) >= 2' --data "$data"
check "why" 0 "$ihs" segments why customer-ada complained --data "$data" --json
expect_in "why: entered" "$tmp/out" '"entered":true'
expect_in "why: the events behind it" "$tmp/out" '"events":["'
check "of" 0 "$ihs" segments of customer-ada --data "$data" --json
expect_in "of: ada's person" "$tmp/out" '"person":"customer-ada"'
check "of an unknown party (2)" 2 "$ihs" segments of nobody --data "$data"
check "a bad --as-of (2)" 2 "$ihs" segments members churn_risk --as-of yesterday --data "$data"
check "a page of 0 is a usage error (1)" 1 "$ihs" segments members churn_risk --limit 0 --data "$data"
check "retire" 0 "$ihs" segments retire churn_risk --data "$data"
check "list all" 0 "$ihs" segments list --all --data "$data"
expect_in "retired shows" "$tmp/out" "retired"

# Only append and generate make a store; every other command needs one that exists.
mkdir -p "$tmp/empty"
for cmd in "projections status" "projections rebuild timeline" "timeline customer-ada" \
           "erase customer-ada --reason test" "hold customer-ada --reason test" "stats" "verify" \
           "retention run --policy $tmp/policy"; do
  echo "channel=chat 2y" >"$tmp/policy"
  # shellcheck disable=SC2086
  check "$cmd on a missing store (5)" 5 "$ihs" $cmd --data "$tmp/missing"
  [ ! -e "$tmp/missing" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: $cmd made $tmp/missing"; rm -rf "$tmp/missing"; }
  # shellcheck disable=SC2086
  check "$cmd on an empty directory (5)" 5 "$ihs" $cmd --data "$tmp/empty"
  [ -z "$(ls -A "$tmp/empty")" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: $cmd wrote into an empty directory"; rm -rf "$tmp/empty"/*; }
done
ihsd_bin=$(dirname "$ihs")/ihsd
check "ihsd with an unusable --master-key (5)" 5 "$ihsd_bin" --data "$tmp/never" --master-key /proc/nonexistent/key --listen 127.0.0.1:0
[ ! -e "$tmp/never" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: ihsd left $tmp/never behind"; }

# Numbers are whole and in range, or refused as usage (1).
check "--from -1 (1)" 1 "$ihs" read --data "$data" customer-ada --from -1
expect_in "names the value" "$tmp/err" '"-1" is not a whole number'
check "--from past 2^64 (1)" 1 "$ihs" tail --data "$data" --from 99999999999999999999
check "--limit 1.5 (1)" 1 "$ihs" tail --data "$data" --limit 1.5
check "a position of -3 (1)" 1 "$ihs" audit replay customer-ada --data "$data" --position -3

# Output paths are checked before any work, and nothing is left behind.
mkdir -p "$tmp/adir"
check "--html names a directory (2)" 2 "$ihs" timeline customer-ada --data "$data" --html "$tmp/adir"
expect_in "says it is a directory" "$tmp/err" "is a directory"
check "a timeline with nothing answered" 0 "$ihs" timeline customer-dan --data "$data"
expect_in "a thread a message opened is shown short" "$tmp/out" "share          #000011"
expect_not_in "no raw event ids as thread names" "$tmp/out" "event:"
expect_in "one touchpoint in the singular, no median of nothing" "$tmp/out" "customer-dan (customer): 1 touchpoint, 0 open, 0 answered (median —), 0 channel switches"
check "--truth names a directory (2)" 2 "$ihs" generate --parties 10 --days 2 --out "$tmp/gen.jsonl" --truth "$tmp/adir"
[ ! -e "$tmp/gen.jsonl" ] && [ ! -e "$tmp/adir.tmp" ] && passed=$((passed + 1)) || { failed=$((failed + 1)); echo "FAIL: output written or .tmp left behind"; }

# Import: a whole history into a new store, all or nothing.
check "import the sample" 0 "$ihs" import "$sample" --data "$tmp/imported"
expect_in "import summary" "$tmp/out" "imported 23 events into $tmp/imported"
check "the import verifies" 0 "$ihs" verify --data "$tmp/imported"
"$ihs" stats --data "$data" --json | grep -o '"events":[0-9]*' >/dev/null
check "the same events as appended" 0 "$ihs" read --data "$tmp/imported" customer-ada --json
expect_in "ada's events imported" "$tmp/out" '"streamId":"customer-ada"'
check "import --json" 0 "$ihs" import - --data "$tmp/imported-json" --json <"$sample"
expect_in "import json" "$tmp/out" '"events":23'
{ head -5 "$sample"; echo '{"streamId":"x","occurredAt":"not a time"}'; tail -5 "$sample"; } >"$tmp/bad.jsonl"
check "a bad line (2)" 2 "$ihs" import "$tmp/bad.jsonl" --data "$tmp/half"
expect_in "the bad line is named" "$tmp/err" "line 6:"
[ ! -e "$tmp/half" ] && [ ! -e "$tmp/half.importing" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: a failed import left a store behind"; }
{ head -3 "$sample"; sed -n 3p "$sample"; } >"$tmp/twice.jsonl"
check "an id twice (2)" 2 "$ihs" import "$tmp/twice.jsonl" --data "$tmp/twice"
expect_in "the repeated id is named" "$tmp/err" "appears twice"
[ ! -e "$tmp/twice" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: a failed import left a store behind"; }
# Beyond one chunk of 10,000 lines (the input is decoded a chunk or two ahead of the appends).
check "a history of three chunks" 0 "$ihs" generate --parties 3000 --days 60 --events 25000 --seed 9 --out "$tmp/big.jsonl"
check "imports whole" 0 "$ihs" import "$tmp/big.jsonl" --data "$tmp/big" --json
expect_in "every line stored" "$tmp/out" '"events":25000'
check "the big import verifies" 0 "$ihs" verify --data "$tmp/big" --json
expect_in "25,000 verified" "$tmp/out" '"events":25000'
{ head -22000 "$tmp/big.jsonl"; echo '{"id":"00000000000000000000000000000001","streamId":"x","occurredAt":"2026-01-01T00:00:00Z","touchpoint":{"channel":"telegraph"}}'; tail -n +22001 "$tmp/big.jsonl"; } >"$tmp/bigbad.jsonl"
check "a bad line in the third chunk (2)" 2 "$ihs" import "$tmp/bigbad.jsonl" --data "$tmp/bigbad"
expect_in "the bad line is named in the third chunk" "$tmp/err" "line 22001:"
[ ! -e "$tmp/bigbad" ] && [ ! -e "$tmp/bigbad.importing" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: a failed import left a store behind"; }
check "import into a store that holds events (2)" 2 "$ihs" import "$sample" --data "$data"
expect_in "says to append instead" "$tmp/err" "is not empty"
check "import of a missing file (2)" 2 "$ihs" import "$tmp/nothing.jsonl" --data "$tmp/none"
# What an interrupted import left (killed, or the machine went down) is removed by the next one;
# what a running import is writing is not: RocksDB's lock on DIR.importing/db/LOCK says which.
mkdir -p "$tmp/again.importing" && echo "half a store" >"$tmp/again.importing/000007.sst"
check "import over an interrupted one" 0 "$ihs" import "$sample" --data "$tmp/again"
[ -e "$tmp/again/db/CURRENT" ] && [ ! -e "$tmp/again.importing" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: the leftover of an interrupted import stayed or was used"; }
mkdir -p "$tmp/busy.importing/db"
/usr/bin/python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "w"); fcntl.lockf(f, fcntl.LOCK_EX); print("locked", flush=True); time.sleep(120)' \
  "$tmp/busy.importing/db/LOCK" >"$tmp/locker" &
locker=$!
for _ in $(seq 100); do grep -q locked "$tmp/locker" && break; sleep 0.1; done
check "import while another is loading the same DIR (5)" 5 "$ihs" import "$sample" --data "$tmp/busy"
expect_in "the running import is named" "$tmp/err" "busy.importing is in use by another import (pid $locker)"
[ -e "$tmp/busy.importing/db/LOCK" ] && [ ! -e "$tmp/busy" ] && passed=$((passed + 1)) ||
  { failed=$((failed + 1)); echo "FAIL: an import removed what a running one was writing"; }
kill "$locker"
wait "$locker" 2>/dev/null
check "import once the other has ended" 0 "$ihs" import "$sample" --data "$tmp/busy"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
