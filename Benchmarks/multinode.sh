#!/bin/bash
# Several daemons on one PostgreSQL store and one Inbox: files/s for 1, 2 and 3 daemons next to a pgbench anchor
# (claim + complete, 2 commits per job, the same SKIP LOCKED claim) measured against the same server in the same run.
#
#   scripts/postgres Benchmarks/multinode.sh          (scripts/postgres starts a throwaway server)
#
# Environment: BIN (default .build/release/orchestrator), FILES (3000), RUNS (3), DAEMONS ("1 2 3"), CLIENTS
# ("1 2 4"), MAX_CONCURRENT (2 per daemon), ANCHOR_SECONDS (8), LISTERS (how many of the daemons list Inbox; the
# others have roles = ["worker", "scheduler"]; default all). Worker /bin/true, the smallest settle (1ms): the
# daemons' own cost. Rounds are interleaved (anchor, 1, 2, 3 daemons, anchor, ...) so that a noisy moment hits all.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
BIN=${BIN:-$here/.build/release/orchestrator}
FILES=${FILES:-3000}
RUNS=${RUNS:-3}
DAEMONS=${DAEMONS:-"1 2 3"}
CLIENTS=${CLIENTS:-"1 2 4"}
MAX_CONCURRENT=${MAX_CONCURRENT:-2}
MAX_CPU_PERCENT=${MAX_CPU_PERCENT:-80}
ANCHOR_SECONDS=${ANCHOR_SECONDS:-8}
LISTERS=${LISTERS:-99}
: "${ORCH_TEST_POSTGRES_URL:?run under scripts/postgres}"
PGBENCH=$(ls /usr/lib/postgresql/*/bin/pgbench | tail -1)
server=${ORCH_TEST_POSTGRES_URL%/*}
work=$(mktemp -d /tmp/multinode.XXXX)
trap 'pkill -P $$ 2>/dev/null; rm -rf "$work"' EXIT
gcc -O2 -o "$work/burst" "$here/Benchmarks/burst.c" -lsqlite3

anchor() {  # $1 = clients: claim+complete jobs/s
    local db="anchor_$RANDOM$RANDOM"
    psql "$ORCH_TEST_POSTGRES_URL" -qXc "CREATE DATABASE $db" >/dev/null
    local url="$server/$db"
    psql "$url" -qX >/dev/null <<'SQL'
CREATE TABLE aj (id bigserial PRIMARY KEY, state text NOT NULL, owner text, lease_until double precision,
                 attempts int DEFAULT 0, claims int DEFAULT 0, priority int DEFAULT 5);
CREATE INDEX aj_q ON aj(priority DESC, id) WHERE state = 'queued';
INSERT INTO aj(state) SELECT 'queued' FROM generate_series(1, 300000);
SQL
    cat >"$work/claim.sql" <<'SQL'
UPDATE aj SET state = 'running', owner = 'n', attempts = attempts + 1, claims = claims + 1,
              lease_until = extract(epoch FROM clock_timestamp()) + 30
WHERE id = (SELECT id FROM aj WHERE state = 'queued' ORDER BY priority DESC, id FOR UPDATE SKIP LOCKED LIMIT 1)
RETURNING id, claims \gset
UPDATE aj SET state = 'done', lease_until = NULL WHERE id = :id AND state = 'running' AND owner = 'n' AND claims = :claims;
SQL
    "$PGBENCH" -n -f "$work/claim.sql" -c "$1" -j "$1" -T "$ANCHOR_SECONDS" "$url" 2>/dev/null |
        awk '/^tps/ { printf "%.0f", $3 }'
    psql "$ORCH_TEST_POSTGRES_URL" -qXc "DROP DATABASE $db" >/dev/null
}

# Busy and total ticks of the whole machine (daemons, workers, the server, everything): how close a run came to
# using every core, which caps what more daemons can add.
machine_ticks() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }

# CPU ticks of the whole PostgreSQL server: the postmaster, its live backends and helpers, and every child that has
# ended (cutime+cstime of the postmaster).
postmaster=$(head -1 "$(psql "$ORCH_TEST_POSTGRES_URL" -qAtXc 'SHOW data_directory')/postmaster.pid")
server_ticks() {
    local total
    total=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$postmaster/stat")
    for child in $(pgrep -P "$postmaster"); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$child/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

cluster() {  # $1 = daemons: files/s, the daemons' CPU in ms per file, and how busy the machine was (%)
    local n=$1 db="bench_$RANDOM$RANDOM" root="$work/c$RANDOM"
    psql "$ORCH_TEST_POSTGRES_URL" -qXc "CREATE DATABASE $db" >/dev/null
    mkdir -p "$root/Inbox" "$root/Done" "$root/Failed" "$root/stage"
    local pids=()
    for i in $(seq 1 "$n"); do
        mkdir -p "$root/d$i/config"
        cat >"$root/d$i/config/orchestrator.toml" <<TOML
[paths]
inbox = "$root/Inbox"
done = "$root/Done"
failed = "$root/Failed"
[inbox]
settle = "1ms"
[limits]
max_concurrent = $MAX_CONCURRENT
max_cpu_percent = $MAX_CPU_PERCENT
[node]
name = "d$i"
$( [ "$i" -le "$LISTERS" ] || echo 'roles = ["worker", "scheduler"]' )
[store]
url = "$server/$db"
[[handler]]
name = "bench"
command = ["/bin/true"]
TOML
        "$BIN" watch --config "$root/d$i/config/orchestrator.toml" 2>"$root/d$i/log" &
        pids+=($!)
    done
    for i in $(seq 1 "$n"); do
        for _ in $(seq 200); do grep -q watching "$root/d$i/log" && break; sleep 0.05; done
    done
    (cd "$root/stage" && seq 1 "$FILES" | sed 's/$/.txt/' | xargs touch -d '1 hour ago')
    local t0 t1 m0 m1 s0 s1
    m0=$(machine_ticks)
    s0=$(server_ticks)
    # The mover and the waiter are Benchmarks/burst.c: an inotify watch on Done, no listing of a growing folder every
    # few ms (`ls Done | wc -l` every 20 ms took up to a tenth of the machine, most of it from the runs that had
    # no idle core to spare: the more daemons, the more it cost them).
    "$work/burst" "$root/stage" "$root/Inbox" "$root/Done" "$FILES" - >"$root/times" &
    local waiter=$!
    while kill -0 "$waiter" 2>/dev/null; do
        kill -0 "${pids[@]}" 2>/dev/null || { kill "$waiter"; echo "a daemon exited: $(cat "$root"/d*/log | tail -3)" >&2; exit 1; }
        sleep 0.2
    done
    wait "$waiter" || { echo "the burst did not end: $(cat "$root"/d*/log | tail -3)" >&2; exit 1; }
    read -r t0 t1 <"$root/times"
    m1=$(machine_ticks)
    s1=$(server_ticks)
    local recorded
    for _ in $(seq 250); do
        recorded=$(psql "$server/$db" -qAtXc "SELECT count(*) FROM job WHERE state = 'done' AND final_path IS NOT NULL")
        [ "$recorded" -ge "$FILES" ] && break
        sleep 0.02
    done
    [ "$recorded" -ge "$FILES" ] || echo "WARNING: the store records $recorded of $FILES files done" >&2
    local cpu=0
    for pid in "${pids[@]}"; do cpu=$((cpu + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done
    kill "${pids[@]}"
    wait "${pids[@]}" 2>/dev/null
    local failed
    failed=$(ls "$root/Failed" | wc -l)
    [ "$failed" -eq 0 ] || echo "WARNING: $failed files in Failed" >&2
    python3 -c "import sys; f,t0,t1,cpu=int(sys.argv[1]),float(sys.argv[2]),float(sys.argv[3]),int(sys.argv[4]); a=list(map(int,sys.argv[5:7])); b=list(map(int,sys.argv[7:9])); print('%.0f %.3f %d %.3f' % (f/(t1-t0), cpu*10/f, round(100*(b[0]-a[0])/max(1,b[1]-a[1])), int(sys.argv[9])*10/f))" \
        "$FILES" "$t0" "$t1" "$cpu" $m0 $m1 $((s1 - s0))
    rm -rf "$root"
    psql "$ORCH_TEST_POSTGRES_URL" -qXc "DROP DATABASE $db" >/dev/null
}

echo "files=$FILES runs=$RUNS max_concurrent=$MAX_CONCURRENT per daemon, worker /bin/true, $(nproc) cores"
for run in $(seq 1 "$RUNS"); do
    line="run $run:"
    for c in $CLIENTS; do line="$line anchor$c=$(anchor "$c")"; done
    for n in $DAEMONS; do
        read -r rate cpu busy server_cpu < <(cluster "$n")
        line="$line daemons$n=$rate (${cpu} ms cpu/file, server ${server_cpu} ms/file, machine ${busy}% busy)"
    done
    echo "$line"
done
