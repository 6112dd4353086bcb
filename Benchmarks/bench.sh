#!/usr/bin/env bash
# Benchmarks for the inbox (not a test). Compares orchestrator with a bare C spawn-and-rename loop
# (the floor) and an `inotifywait | xargs -P2` pipeline, all in one run: the machine is noisy, so
# only ratios within a run mean anything.
#
#   Benchmarks/bench.sh                      all parts
#   Benchmarks/bench.sh throughput latency   some of: throughput latency idle backlog wheel cron-cli
#   N=1000 BACKLOG=5000 Benchmarks/bench.sh  smaller counts for a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
BACKLOG=${BACKLOG:-50000}
LATENCY_RUNS=${LATENCY_RUNS:-200}
parts=("${@:-throughput latency idle backlog wheel cron-cli}")
parts=(${parts[*]})
work=$(mktemp -d /tmp/orch-bench.XXXXXX)
cleanup() { pkill -f "orchestrator watch --config $work" 2>/dev/null || true; pkill -f "inotifywait -q -m -e close_write,moved_to --format %f $work" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

scripts/setup
command -v inotifywait >/dev/null || { apt-get update -qq && apt-get install -y -qq inotify-tools >/dev/null; }
swift build -c release --product orchestrator >/dev/null
bin="$(swift build -c release --show-bin-path)/orchestrator"
gcc -O2 -o "$work/floor" Benchmarks/floor.c
gcc -O2 -o "$work/latency" Benchmarks/latency.c

now() { date +%s.%N; }
rate() { python3 -c "print(round($1 / ($3 - $2)))"; }
wait_count() {  # DIR COUNT [DB]: until DIR holds COUNT entries (bounded). With DB, polls the store's
    # done count first: scanning a folder of 50,000 names every few ms would steal the CPU being measured.
    python3 - "$@" <<'PY'
import os, sqlite3, sys, time
d, n = sys.argv[1], int(sys.argv[2]); deadline = time.time() + 600
if len(sys.argv) > 3:
    while time.time() < deadline:
        try:
            db = sqlite3.connect("file:%s?mode=ro" % sys.argv[3], uri=True, timeout=5)
            done = db.execute("select count(*) from job where state='done' and final_path is not null").fetchone()[0]
            db.close()
            if done >= n: break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
while time.time() < deadline:
    with os.scandir(d) as it:
        if sum(1 for _ in it) >= n: sys.exit(0)
    time.sleep(0.005)
sys.exit("timed out waiting for %d files in %s" % (n, d))
PY
}
make_files() { mkdir -p "$1" && (cd "$1" && seq 1 "$2" | sed 's/$/.txt/' | xargs touch -d '1 hour ago'); }
move_all() { python3 -c "import os,sys; s,d=sys.argv[1:]; [os.rename(os.path.join(s,f), os.path.join(d,f)) for f in os.listdir(s)]" "$1" "$2"; }
instance() {  # DIR CONCURRENCY
    "$bin" init "$1" >/dev/null
    printf '[limits]\nmax_concurrent = %s\n\n[[handler]]\nname = "true"\ncommand = ["/bin/true"]\n' "$2" > "$1/config/orchestrator.toml"
}
start_daemon() {  # DIR -> sets pid
    ORCH_LOG_LEVEL=${ORCH_LOG_LEVEL:-warning} "$bin" watch --config "$1/config/orchestrator.toml" 2>"$1/daemon.log" &
    pid=$!
    for _ in $(seq 1 200); do grep -q watching "$1/daemon.log" 2>/dev/null && return; sleep 0.05; done
    ORCH_LOG_LEVEL=info; sleep 0.5
}
cpu_ms() { awk '{print ($14+$15)*10}' "/proc/$1/stat"; }
recorded() { sqlite3 "$1/.orchestrator/orchestrator.sqlite" "select count(*) from job where state='done'"; }

declare -A R
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
floor_rate() {  # COUNT
    rm -rf "$work/fl" && make_files "$work/fl/in" "$1" && mkdir -p "$work/fl/out"
    "$work/floor" "$work/fl/in" "$work/fl/out" | sed -n 's/.*= \([0-9]*\) files\/s/\1/p'
}

for part in "${parts[@]}"; do case $part in
throughput)
    R[floor]=$(floor_rate "$N")
    for c in 2 4; do
        d="$work/t$c"; instance "$d" "$c"; make_files "$d/stage" "$N"; start_daemon "$d"
        t0=$(now); move_all "$d/stage" "$d/Inbox"; wait_count "$d/Done" "$N" "$d/.orchestrator/orchestrator.sqlite"; t1=$(now)
        R[orch_c$c]=$(rate "$N" "$t0" "$t1"); R[orch_c${c}_cpu_ms]=$(cpu_ms $pid); kill $pid; wait $pid || true
        [ "$(recorded "$d")" = "$N" ] || { echo "store recorded $(recorded "$d") of $N runs" >&2; exit 1; }
    done
    d="$work/pipe"; mkdir -p "$d/Inbox" "$d/Done"; make_files "$d/stage" "$N"
    (cd "$d" && inotifywait -q -m -e close_write,moved_to --format %f Inbox | xargs -d '\n' -P2 -I{} sh -c '/bin/true && mv "Inbox/$1" Done/' _ {}) &
    sleep 1; t0=$(now); move_all "$d/stage" "$d/Inbox"; wait_count "$d/Done" "$N"; t1=$(now)
    R[pipeline]=$(rate "$N" "$t0" "$t1"); pkill -f "inotifywait -q -m" || true
    ;;
latency)
    d="$work/lat"; instance "$d" 2; start_daemon "$d"
    R[orch_latency]=$("$work/latency" "$d" "$LATENCY_RUNS"); kill $pid; wait $pid || true
    d="$work/latpipe"; mkdir -p "$d/Inbox" "$d/Done"
    (cd "$d" && inotifywait -q -m -e close_write,moved_to --format %f Inbox | xargs -d '\n' -P2 -I{} sh -c '/bin/true && mv "Inbox/$1" Done/' _ {}) &
    sleep 1; R[pipeline_latency]=$("$work/latency" "$d" "$LATENCY_RUNS"); pkill -f "inotifywait -q -m" || true
    ;;
idle)
    d="$work/idle"; instance "$d" 2; start_daemon "$d"; sleep 2
    # perf's task-clock counts every thread to the microsecond; /proc's ticks are 10 ms each.
    if perf stat -e task-clock true >/dev/null 2>&1; then
        R[idle_cpu_ms_30s]=$(perf stat -x, -e task-clock -p $pid -- sleep 30 2>&1 | awk -F, '/task-clock/ {printf "%.2f", $1}')
    else
        a=$(cpu_ms $pid); sleep 30; b=$(cpu_ms $pid); R[idle_cpu_ms_30s]=$((b - a))
    fi
    R[idle_rss_mb]=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status)
    kill $pid; wait $pid || true
    ;;
backlog)
    R[floor_backlog]=$(floor_rate "$BACKLOG")
    d="$work/bl"; instance "$d" 4; make_files "$d/Inbox" "$BACKLOG"
    t0=$(now); start_daemon "$d"; wait_count "$d/Done" "$BACKLOG" "$d/.orchestrator/orchestrator.sqlite"; t1=$(now)
    R[backlog]=$(rate "$BACKLOG" "$t0" "$t1"); R[backlog_peak_rss_mb]=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$pid/status)
    kill $pid; wait $pid || true
    ;;
wheel)
    # The timer wheel against swift-collections' Heap on the same 1,000,000 timers, and cron next-fire throughput.
    swift build -c release --product orchestrator-bench >/dev/null
    "$(swift build -c release --show-bin-path)/orchestrator-bench"
    ;;
cron-cli)
    # `orchestrator cron next` as a whole process against cronsim (Python), five expressions in Europe/Berlin;
    # which ones and why: Benchmarks/cron_cli.py. CRON_RUNS interleaved runs; CRON_BIN measures another build.
    python3 -c "import cronsim" 2>/dev/null || pip install -q cronsim
    swift build -c release --product orchestrator-bench >/dev/null
    python3 Benchmarks/cron_cli.py --orchestrator "${CRON_BIN:-$bin}" --runs "${CRON_RUNS:-5}" \
        --bench "$(swift build -c release --show-bin-path)/orchestrator-bench"
    ;;
*) echo "unknown part: $part" >&2; exit 64 ;;
esac; done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
for key in $(printf '%s\n' "${!R[@]}" | sort); do printf '%-22s %s\n' "$key" "${R[$key]}"; done
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
echo
[ -n "${R[floor]:-}" ] && echo "throughput vs floor: c=2 $(ratio "${R[orch_c2]}" "${R[floor]}"), c=4 $(ratio "${R[orch_c4]}" "${R[floor]}") (target >= 0.70); pipeline $(ratio "${R[pipeline]}" "${R[floor]}")"
[ -n "${R[floor_backlog]:-}" ] && echo "backlog vs floor: $(ratio "${R[backlog]}" "${R[floor_backlog]}") (target >= 0.70), peak RSS ${R[backlog_peak_rss_mb]} MB (target < 100)"
[ -n "${R[idle_cpu_ms_30s]:-}" ] && echo "idle: ${R[idle_cpu_ms_30s]} ms CPU in 30 s (target < 10), RSS ${R[idle_rss_mb]} MB (target < 30)"
exit 0
