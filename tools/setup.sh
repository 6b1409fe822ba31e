#!/usr/bin/env bash
# Set up ihs on a Debian 12 machine and run one job:
#   bash tools/setup.sh demo   install what is missing, build, generate the demo history, show it,
#                              and serve it with ihsd on 127.0.0.1:7420 (Ctrl-C stops it)
#   bash tools/setup.sh test   install what is missing (and, for the browser tests, Node.js and
#                              puppeteer-core from npm), build, run the whole test suite
#                              (release build, a clang build that checks the lock annotations,
#                              then the tests again under ASan + UBSan)
#   bash tools/setup.sh build  install what is missing and build only
#   bash tools/setup.sh tsan   install what is missing, build with clang and ThreadSanitizer, and
#                              run the tests labelled tsan (the store's and the projections')
# Environment: CI=true turns warnings into errors; IHS_JOBS sets build parallelism.
set -euo pipefail
job=${1:-demo}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

packages=(g++ cmake ninja-build pkg-config git librocksdb-dev capnproto libcapnp-dev libabsl-dev
          libsodium-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
          nlohmann-json3-dev openssl chromium libgoogle-perftools-dev python3 clang groff-base
          curl python3-prometheus-client libnats-dev nats-server iproute2)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi

jobs=${IHS_JOBS:-$(nproc)}
werror=OFF
[ "${CI:-}" = "true" ] && werror=ON

build() {  # build DIR [extra cmake args...]
  local dir=$1; shift
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DIHS_WERROR=$werror "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
}

case "$job" in
  build)
    build build
    ;;
  demo)
    # IHS_BIN (built binaries to use instead of building), IHS_DEMO_DIR, IHS_DEMO_TRUTH and
    # IHS_DEMO_LISTEN move the demo elsewhere: tests/tools/demo_test.sh runs it so.
    bin=${IHS_BIN:-}
    if [ -z "$bin" ]; then
      build build
      bin=build/bin
    fi
    ihs=$bin/ihs
    demo=${IHS_DEMO_DIR:-./demo}
    truth_file=${IHS_DEMO_TRUTH:-demo-truth.json}
    listen=${IHS_DEMO_LISTEN:-127.0.0.1:7420}
    http=${IHS_DEMO_HTTP:-127.0.0.1:7421}
    echo
    # The history ends on the day the demo is first made (kept in $demo/ends), so that waiting
    # times mean something; run again, it is the same history and nothing doubles.
    truth=()
    if [ -e "$demo/ends" ]; then
      ends=$(cat "$demo/ends")
    else
      ends=$(date -u +%F)
      truth=(--truth "$truth_file" --force)
    fi
    echo "== generating the demo history into $demo: 300 parties over the 4 weeks before $ends"
    echo "   (docs/workload.md; run it again and nothing doubles)"
    if ! "$ihs" generate --parties 300 --days 28 --seed 1 --ends "$ends" --data "$demo" "${truth[@]}"; then
      echo "$demo holds another history (made by another version of ihs?): move it away and run again" >&2
      exit 2
    fi
    echo "$ends" >"$demo/ends"
    start=$(date -u -d "$ends -28 days" +%F)
    echo
    echo "== the story, as customer-ada's timeline shows it:  $ihs timeline --data "$demo" customer-ada"
    echo "   She buys online, then complains by email that the product arrived broken, and nobody"
    echo "   answers. Two days later she complains in public, on Twitter, naming the email: a channel"
    echo "   switch (SWITCH from email). Others share and mention her tweet within the hour (in their"
    echo "   own streams). The company answers on Twitter 1h25m after the tweet, and that one reply"
    echo "   answers the email too, two days late: 0 open, 2 answered, in wall-clock and service hours."
    "$ihs" timeline --data "$demo" customer-ada
    rm -f "$demo/customer-ada.html"
    "$ihs" timeline --data "$demo" customer-ada --html "$demo/customer-ada.html" >/dev/null
    echo "   The same as a page, lanes per channel: $demo/customer-ada.html (chromium $demo/customer-ada.html)"
    echo
    asof="$(date -u -d "$start +4 days" +%F)T12:00:00Z"
    echo "== what was known the day after the email (the history was recorded as it arrived):"
    echo "   $ihs audit replay customer-ada --as-of $asof --data "$demo""
    "$ihs" audit replay customer-ada --as-of "$asof" --data "$demo" |
      sed -n '/the timeline as it was known then/,$p'
    echo
    echo "== her segments, kept true by each event and by the clock, and why she left open_complaint:"
    "$ihs" segments of customer-ada --data "$demo"
    "$ihs" segments why customer-ada open_complaint --data "$demo"
    echo
    echo "== who is who: streams joined into persons by identity resolution ($ihs identity stats)"
    "$ihs" identity stats --data "$demo" | grep -E "^(persons|streams|multiStreamPersons|suggestions) "
    echo
    echo "Where to look next:"
    echo "  $ihs read --data "$demo" customer-ada            the events themselves (--json for JSON)"
    echo "  $ihs tail --data "$demo" --limit 20              the global log"
    echo "  $ihs verify --data "$demo"                       the Merkle tree over every event"
    echo "  $ihs segments list --data "$demo"                the segments defined, with their rules"
    echo "  $ihs segments members churn_risk --data "$demo"  who is in one"
    echo "  $ihs identity suggestions --data "$demo"         pairs that may be one person"
    echo "  $truth_file                                 the ground truth: unanswered messages,"
    echo "                                                  switches, identities, segments"
    echo "  (these read beside the server started below, too)"
    echo
    # Fresh tokens on every run: only their hashes are kept in $demo/tokens (docs/rpc.md).
    rm -f "$demo/tokens"
    reader=$("$ihs" token new --tokens "$demo/tokens" --role reader --name demo-reader 2>/dev/null)
    writer=$("$ihs" token new --tokens "$demo/tokens" --role writer --name demo-writer 2>/dev/null)
    now=$(date -u +%FT%TZ)
    echo "== serving the demo with ihsd on $listen (Cap'n Proto RPC, docs/rpc.md)"
    echo "   and the console on http://$http/ (log in with the reader token below; docs/console.md);"
    echo "   Ctrl-C stops it. In another terminal, try:"
    echo "   export IHS_TOKEN=$reader   # a reader token"
    echo "   $ihs timeline --connect $listen customer-ada"
    echo "   $ihs tail -f --connect $listen                        # new events, live"
    echo "   $ihs segments watch open_complaint --connect $listen  # who enters and leaves, live"
    echo "   and in a third, a new customer's complaint (the writer token):"
    echo "   echo '{\"id\":\"$(od -An -tx1 -N16 /dev/urandom | tr -d " \n")\",\"occurredAt\":\"$now\",\"touchpoint\":{\"channel\":\"chat\",\"direction\":\"inbound\",\"type\":\"complaint\"},\"content\":{\"text\":\"Hello from the demo\"}}' |"
    echo "     IHS_TOKEN=$writer $ihs append --connect $listen --stream customer-new"
    echo
    exec "$bin/ihsd" --data "$demo" --tokens "$demo/tokens" --listen "$listen" --http "$http"
    ;;
  test)
    # The browser tests (tests/browser, docs/console.md) drive Debian's Chromium with
    # puppeteer-core from npm, pinned by tests/browser/package-lock.json; no browser is downloaded.
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
      echo "== installing: nodejs npm (for the browser tests)"
      sudo_cmd=()
      [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
      "${sudo_cmd[@]}" apt-get update -qq
      DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
        nodejs npm
    fi
    (cd tests/browser && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
    build build
    ctest --test-dir build --output-on-failure -j "$jobs" -LE soak
    echo "== a clang build of everything: lock rules checked by the compiler (-Werror=thread-safety)"
    CC=clang CXX=clang++ build build-clang
    echo "== the tests again under AddressSanitizer + UndefinedBehaviorSanitizer"
    build build-asan -DIHS_SANITIZE=address,undefined -DIHS_BUILD_BENCHMARKS=OFF
    ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE soak
    ;;
  tsan)
    # clang: GCC 12's ThreadSanitizer crashes in this build (docs/decisions.md).
    CC=clang CXX=clang++ build build-tsan -DIHS_SANITIZE=thread -DIHS_BUILD_BENCHMARKS=OFF
    TSAN_OPTIONS="suppressions=$root/tools/tsan.supp halt_on_error=1" \
      ctest --test-dir build-tsan --output-on-failure -j "$jobs" -L tsan
    ;;
  *)
    echo "usage: bash tools/setup.sh demo|test|build|tsan" >&2
    exit 1
    ;;
esac
