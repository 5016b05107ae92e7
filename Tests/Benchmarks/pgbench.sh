#!/usr/bin/env bash
# The database leg under pgbench: TPC-B-like transactions straight to PostgreSQL, through Tracetap's
# database leg, and, when installed, through pgbouncer (session pooling) and socat (a plain TCP relay) for
# reference. Runs are alternated; prints tps per run and the ratios to direct. Loopback only.
#   Tests/Benchmarks/pgbench.sh [SECONDS_PER_RUN] [ROUNDS]     (needs: postgresql, a release build)
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-6}
rounds=${2:-2}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
work=$(mktemp -d /tmp/tracetap-pgbench.XXXXXX)
as_postgres=()
if [ "$(id -u)" = 0 ]; then chown postgres "$work"; as_postgres=(setpriv --reuid=postgres --regid=postgres --init-groups); fi
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

"${as_postgres[@]}" "$bin/initdb" -D "$work/data" -U tracetap --auth=trust --no-sync >/dev/null
pg=$(free_port)
"${as_postgres[@]}" "$bin/postgres" -D "$work/data" -p "$pg" -k "$work" -c listen_addresses=127.0.0.1 -c fsync=off >"$work/pg.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "ready to accept" "$work/pg.log" && break; sleep 0.1; done
export PGUSER=tracetap PGDATABASE=postgres PGHOST=127.0.0.1
pgbench -i -s 5 -p "$pg" >/dev/null 2>&1

declare -A ports=([direct]=$pg)
leg=$(free_port)
.build/release/tracetap proxy --quiet --admin off --no-capture --no-rules --listen 127.0.0.1:0 --upstream http://127.0.0.1:9 \
    --db-listen 127.0.0.1:"$leg" --db-upstream 127.0.0.1:"$pg" 2>"$work/tracetap.log" &
pids+=($!)
ports[tracetap]=$leg
if command -v pgbouncer >/dev/null; then
    bouncer=$(free_port)
    printf '[databases]\npostgres = host=127.0.0.1 port=%s dbname=postgres\n[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = %s\nauth_type = trust\nauth_file = %s/users.txt\npool_mode = session\nunix_socket_dir =\npidfile = %s/pgbouncer.pid\nlogfile = %s/pgbouncer.log\n' \
        "$pg" "$bouncer" "$work" "$work" "$work" >"$work/pgbouncer.ini"
    echo '"tracetap" ""' >"$work/users.txt"
    [ "$(id -u)" = 0 ] && chown postgres "$work"/*
    "${as_postgres[@]}" pgbouncer "$work/pgbouncer.ini" >/dev/null 2>&1 &
    pids+=($!)
    ports[pgbouncer]=$bouncer
fi
if command -v socat >/dev/null; then
    relay=$(free_port)
    socat TCP-LISTEN:"$relay",fork,reuseaddr,bind=127.0.0.1 TCP:127.0.0.1:"$pg" &
    pids+=($!)
    ports[socat]=$relay
fi
sleep 1

declare -A total=()
for round in $(seq "$rounds"); do
    for name in direct tracetap pgbouncer socat; do
        [ -n "${ports[$name]:-}" ] || continue
        tps=$(pgbench -c 4 -j 2 -T "$seconds" -p "${ports[$name]}" 2>/dev/null | awk '/^tps/ {print int($3)}')
        echo "round $round  $name  $tps tps"
        total[$name]=$(( ${total[$name]:-0} + tps ))
    done
done
for name in tracetap pgbouncer socat; do
    [ -n "${total[$name]:-}" ] || continue
    python3 -c "print('$name / direct: %.2fx' % (${total[$name]} / ${total[direct]}))"
done
[ -n "${total[pgbouncer]:-}" ] && python3 -c "print('tracetap / pgbouncer: %.2fx' % (${total[tracetap]} / ${total[pgbouncer]}))"
