#!/usr/bin/env bash
# Set up ihs on a Debian 12 machine and run one job:
#   bash tools/setup.sh demo   install what is missing, build, generate the demo history, show it,
#                              and serve it with ihsd on 127.0.0.1:7420 (Ctrl-C stops it)
#   bash tools/setup.sh test   install what is missing, build, run the whole test suite
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
          nlohmann-json3-dev openssl chromium libgoogle-perftools-dev python3 clang)
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
    build build
    echo
    echo "== generating the demo history into ./demo: 300 parties over 4 weeks (docs/workload.md)"
    echo "   (idempotent: run it again and nothing doubles)"
    truth=()
    [ -e demo-truth.json ] || truth=(--truth demo-truth.json)
    build/bin/ihs generate --parties 300 --days 28 --seed 1 --data ./demo "${truth[@]}"
    echo
    echo "== the story: customer-ada's email complaint gets no answer; two days later she complains"
    echo "   on Twitter, others share it, and only then does the company answer:"
    echo "   build/bin/ihs read --data ./demo customer-ada"
    build/bin/ihs read --data ./demo customer-ada
    echo
    echo "== the store: build/bin/ihs stats --data ./demo"
    build/bin/ihs stats --data ./demo
    echo
    echo "Where to look next:"
    echo "  build/bin/ihs read --data ./demo customer-ada --json | head -3   the events as JSON"
    echo "  build/bin/ihs tail --data ./demo --limit 20                      the global log"
    echo "  build/bin/ihs verify --data ./demo                               the Merkle tree"
    echo "  build/bin/ihs segments list --data ./demo                        the segments defined"
    echo "  demo-truth.json                      the ground truth: unanswered messages, channel"
    echo "                                       switches, identities, influential parties, segments"
    echo
    # Fresh tokens on every run: only their hashes are kept in demo/tokens (docs/rpc.md).
    rm -f demo/tokens
    reader=$(build/bin/ihs token new --tokens demo/tokens --role reader --name demo-reader 2>/dev/null)
    writer=$(build/bin/ihs token new --tokens demo/tokens --role writer --name demo-writer 2>/dev/null)
    echo "== serving the demo with ihsd on 127.0.0.1:7420 (Cap'n Proto RPC, docs/rpc.md);"
    echo "   Ctrl-C stops it. In another terminal, try:"
    echo "   export IHS_TOKEN=$reader   # a reader token"
    echo "   build/bin/ihs read --connect 127.0.0.1:7420 customer-ada"
    echo "   build/bin/ihs tail -f --connect 127.0.0.1:7420          # follows new events live"
    echo "   echo '{\"id\":\"de300000000000000000000000000001\",\"occurredAt\":\"2026-02-02T10:00:00Z\",\"touchpoint\":{\"channel\":\"chat\",\"direction\":\"inbound\",\"type\":\"message\"},\"content\":{\"text\":\"Hello from the demo\"}}' |"
    echo "     IHS_TOKEN=$writer build/bin/ihs append --connect 127.0.0.1:7420 --stream customer-new"
    echo
    exec build/bin/ihsd --data ./demo --tokens demo/tokens
    ;;
  test)
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
