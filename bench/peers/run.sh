#!/usr/bin/env bash
# ihsd against PostgreSQL and Redis on this machine's disk, in one run (issue 27, bench/RESULTS.md):
#   bash bench/peers/run.sh [--seconds N] [--json]
# Installs what is missing (Debian's postgresql, redis-server, libpq-dev, libhiredis-dev, and
# what tools/setup.sh builds with), builds, starts a PostgreSQL and a Redis of its own on free
# loopback ports with their data under $IHS_PEERS_DIR (default /tmp/ihs-peers, the disk the
# stores use), runs build/bin/peers_load against them, ihsd, the store in process and raw RocksDB,
# and stops both servers by their PIDs, also on failure. Bounded: 4 modes x 5 systems x N seconds
# (default 5), and 20 minutes at most in all.
# PostgreSQL runs with fsync and synchronous_commit on, Redis with appendonly yes and
# appendfsync always: every acknowledgement in the comparison is durable.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

packages=(postgresql redis-server libpq-dev libhiredis-dev pkg-config python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}"
fi
bash tools/setup.sh build
cmake --build build --target peers_load

dir=${IHS_PEERS_DIR:-/tmp/ihs-peers}
rm -rf "$dir"
mkdir -p "$dir/redis" "$dir/pgrun"
chmod 755 "$dir"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pg_port=$(free_port)
redis_port=$(free_port)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)

# PostgreSQL refuses to run as root: as root it runs as the package's user postgres.
as_pg=()
if [ "$(id -u)" -eq 0 ]; then
  as_pg=(runuser -u postgres --)
  chown postgres "$dir/pgrun"
  mkdir -p "$dir/pg" && chown postgres "$dir/pg"
fi

redis_pid=
pg_started=
stop() {
  if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" || true; fi
  if [ -n "$pg_started" ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir"
}
trap stop EXIT

echo "== PostgreSQL on 127.0.0.1:$pg_port, Redis on 127.0.0.1:$redis_port, data in $dir"
"${as_pg[@]}" "$pg_bin/initdb" -D "$dir/pg" -U bench -A trust -E UTF8 >"$dir/initdb.log"
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pgrun/pg.log" -w -t 60 \
  -o "-p $pg_port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pgrun \
      -c fsync=on -c synchronous_commit=on -c max_connections=200 -c shared_buffers=256MB" \
  start >/dev/null
pg_started=1
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$dir/redis" --appendonly yes \
  --appendfsync always --save '' --daemonize no --logfile "$dir/redis.log" &
redis_pid=$!
for _ in $(seq 100); do
  redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
  sleep 0.1
done

timeout 1200 build/bin/peers_load --dir "$dir/ihs" --redis "127.0.0.1:$redis_port" \
  --pg "host=127.0.0.1 port=$pg_port user=bench dbname=postgres" "$@"
