#!/usr/bin/env bash
# Set up ihs on a Debian 12 machine and run one job:
#   bash tools/setup.sh demo   install what is missing, build, load the sample history, show it
#   bash tools/setup.sh test   install what is missing, build, run the whole test suite
#                              (release build, then the tests again under ASan + UBSan)
#   bash tools/setup.sh build  install what is missing and build only
# Environment: CI=true turns warnings into errors; IHS_JOBS sets build parallelism.
set -euo pipefail
job=${1:-demo}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

packages=(g++ cmake ninja-build pkg-config git librocksdb-dev capnproto libcapnp-dev libabsl-dev
          libsodium-dev libssl-dev libgtest-dev libgmock-dev libbenchmark-dev libcli11-dev
          nlohmann-json3-dev)
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
    echo "== appending the sample history to ./data (idempotent: run it again and nothing doubles)"
    build/bin/ihs append --data ./data < tools/sample/history.jsonl
    echo
    echo "== one customer's touchpoints across channels: build/bin/ihs read --data ./data customer-ada"
    build/bin/ihs read --data ./data customer-ada
    echo
    echo "== the store: build/bin/ihs stats --data ./data"
    build/bin/ihs stats --data ./data
    echo
    echo "Try: build/bin/ihs read --data ./data customer-ada --json | head"
    echo "     build/bin/ihs tail --data ./data   and   build/bin/ihs verify --data ./data"
    ;;
  test)
    build build
    ctest --test-dir build --output-on-failure -j "$jobs" -LE soak
    echo "== the tests again under AddressSanitizer + UndefinedBehaviorSanitizer"
    build build-asan -DIHS_SANITIZE=address,undefined -DIHS_BUILD_BENCHMARKS=OFF
    ASAN_OPTIONS=abort_on_error=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
      ctest --test-dir build-asan --output-on-failure -j "$jobs" -LE soak
    ;;
  *)
    echo "usage: bash tools/setup.sh demo|test|build" >&2
    exit 1
    ;;
esac
