#!/usr/bin/env bash
# Benchmarks for the inbox (not a test). Compares orchestrator with a bare C loop that runs as many
# `/bin/true` workers at once as the daemon and renames each file after its worker exits (the floor,
# floor.c), and an `inotifywait | xargs -P2` pipeline. The machine is noisy and shared, so the floor and the
# daemon run interleaved and only ratios within a run mean anything; RUNS repeats throughput and backlog and
# the summary gives each ratio's min, median and max over the runs.
#
# The daemon runs the bundled defaults: the config `init` writes (info logging, max_concurrent = 2), with
# only the handler's command replaced by /bin/true (and max_concurrent = 4 for the c=4 variant).
#
#   Benchmarks/bench.sh                      all parts
#   Benchmarks/bench.sh throughput backlog   some of: throughput latency idle backlog wheel cron-cli
#   RUNS=5 Benchmarks/bench.sh throughput backlog
#   N=1000 BACKLOG=5000 Benchmarks/bench.sh  smaller counts for a quick look
#   VARIANTS="helper:ORCH_SPAWN=helper direct:ORCH_SPAWN=direct"   daemon variants (NAME:ENV=VALUE,...),
#                                            each run in turn against the same floor in every run;
#   VARIANTS="main:BIN=/tmp/main/orchestrator new:"   BIN= runs another build (orchestrator-spawn beside it)
#   HARNESS=python                          the burst's mover and the waiters in Python, as before Benchmarks/burst.c
#                                            (they took 5-8% of the machine the daemon is measured on)
#   VARIANTS="plain: api:HTTP=20"   HTTP=N serves the API ([http] on a free loopback port) and polls
#                                   GET /api/v1/status N times a second while the daemon works
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-5000}
BACKLOG=${BACKLOG:-50000}
LATENCY_RUNS=${LATENCY_RUNS:-200}
RUNS=${RUNS:-3}
VARIANTS=${VARIANTS:-default:}
parts=("${@:-throughput latency idle backlog wheel cron-cli}")
parts=(${parts[*]})
work=$(mktemp -d /tmp/orch-bench.XXXXXX)
pid= ipid= poller=
cleanup() { for p in $pid $ipid $poller; do kill "$p" 2>/dev/null || true; done; wait; rm -rf "$work"; }
trap cleanup EXIT

scripts/setup
command -v inotifywait >/dev/null || { apt-get update -qq && apt-get install -y -qq inotify-tools >/dev/null; }
if [ "${BUILD:-1}" = 1 ]; then  # BUILD=0: use what is built (e.g. while the sources are being edited)
    swift build -c release --product orchestrator >/dev/null
    # Workers start through orchestrator-spawn beside the binary (guarantee 21); without it they are spawned directly.
    swift build -c release --product orchestrator-spawn >/dev/null
fi
bin="$(swift build -c release --show-bin-path)/orchestrator"
gcc -O2 -o "$work/floor" Benchmarks/floor.c
gcc -O2 -o "$work/latency" Benchmarks/latency.c
gcc -O2 -o "$work/burst" Benchmarks/burst.c -lsqlite3

now() { date +%s.%N; }
pipeline() {  # DIR: inotifywait | xargs -P2 running /bin/true and moving each file; sets ipid (inotifywait's)
    inotifywait -q -m -e close_write,moved_to --format %f "$1/Inbox" \
        > >(cd "$1" && xargs -d '\n' -P2 -I{} sh -c '/bin/true && mv "Inbox/$1" Done/' _ {}) &
    ipid=$!
}
rate() { python3 -c "print(round($1 / ($3 - $2)))"; }
wait_count() {  # DIR COUNT [DB]: until DIR holds COUNT entries (bounded); prints the time it saw them. With DB,
    # polls the store's done count first: scanning a folder of 50,000 names every few ms would steal the CPU being
    # measured. The times come from inside the script, so the interpreter's start (100 ms through a pyenv shim)
    # is not counted against the daemon: the floor times itself from inside too.
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
        if sum(1 for _ in it) >= n:
            print("%.6f" % time.time())
            sys.exit(0)
    time.sleep(0.005)
sys.exit("timed out waiting for %d files in %s" % (n, d))
PY
}
make_files() { mkdir -p "$1" && (cd "$1" && seq 1 "$2" | sed 's/$/.txt/' | xargs touch -d '1 hour ago'); }
move_all() {  # SRC DST: renames every file; prints the time the first rename began
    python3 -c "import os,sys,time; s,d=sys.argv[1:]; names=os.listdir(s); print('%.6f' % time.time(), flush=True); [os.rename(os.path.join(s,f), os.path.join(d,f)) for f in names]" "$1" "$2"
}
instance() {  # DIR CONCURRENCY: the bundled config, only the command (and max_concurrent) changed
    rm -rf "$1"; "$bin" init "$1" >/dev/null
    local toml="$1/config/orchestrator.toml"
    sed -i -e 's|^command *= \["../workers/process.sh", "{file}"\].*|command = ["/bin/true"]|' \
        -e "s|^max_concurrent *= *2 |max_concurrent = $2 |" "$toml"
    grep -q '^command = \["/bin/true"\]$' "$toml" && grep -q "^max_concurrent = $2 " "$toml" \
        || { echo "bench: the bundled config changed; update instance()" >&2; exit 1; }
}
start_daemon() {  # DIR [ENV=VALUE,...] -> sets pid; logs at the bundled level (info) unless ORCH_LOG_LEVEL is set.
    # BIN=PATH among the settings runs another build (e.g. a copy of main's, to compare in one run).
    local envs=() settings=() daemon=$bin e poll=; IFS=, read -ra settings <<< "${2:-}"
    for e in "${settings[@]}"; do case $e in BIN=*) daemon=${e#BIN=} ;; HTTP=*) poll=${e#HTTP=} ;; *) envs+=("$e") ;; esac; done
    if [ -n "$poll" ]; then printf '\n[http]\nlisten = "127.0.0.1:0"\n' >> "$1/config/orchestrator.toml"; fi
    env "${envs[@]}" "$daemon" watch --config "$1/config/orchestrator.toml" 2>"$1/daemon.log" &
    pid=$!
    for _ in $(seq 1 400); do
        if grep -q watching "$1/daemon.log" 2>/dev/null && { [ -z "$poll" ] || grep -q "http: listening" "$1/daemon.log"; }; then
            if [ -n "$poll" ] && [ "$poll" != 0 ]; then start_poller "$(grep -o 'http://127.0.0.1:[0-9]*' "$1/daemon.log" | head -1)" "$poll"; fi
            return 0
        fi
        sleep 0.05
    done
    echo "bench: the daemon did not say it was watching" >&2; exit 1
}
start_poller() {  # URL HZ -> sets poller: GET /api/v1/status HZ times a second, on a fixed schedule, until killed
    # One kept-alive connection, as a browser's dashboard or a monitoring agent keeps one.
    python3 - "$1" "$2" <<'PY' &
import http.client, sys, time, urllib.parse
base, period = urllib.parse.urlsplit(sys.argv[1]), 1 / float(sys.argv[2])
connection = None
due = time.monotonic()
while True:
    try:
        if connection is None:
            connection = http.client.HTTPConnection(base.hostname, base.port, timeout=10)
        connection.request("GET", "/api/v1/status")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        connection = None
    due += period
    time.sleep(max(0, due - time.monotonic()))
PY
    poller=$!
}
stop_daemon() {  # the poller first, so that it never calls a daemon that is gone
    if [ -n "$poller" ]; then kill $poller 2>/dev/null || true; wait $poller 2>/dev/null || true; poller=; fi
    kill $pid; wait $pid || true; pid=
}
tck=$(getconf CLK_TCK)
cpu_ms() { awk -v t="$tck" '{print ($14+$15)*1000/t}' "/proc/$1/stat"; }  # the daemon's threads, not its workers
# Its reaped children (zygotes and workers; the spawner is reaped only when the daemon stops).
children_ms() { awk -v t="$tck" '{print ($16+$17)*1000/t}' "/proc/$1/stat"; }
# Busy and total ticks of the machine, and the daemon's own plus its reaped children's: what others used meanwhile.
# Admission (max_cpu_percent = 80 in the bundled config) holds work back while others use that much, so a run on
# a busy machine says so.
ticks() { echo "$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat) $(awk '{print $14+$15+$16+$17}' "/proc/$1/stat")"; }
others() { python3 -c "import sys; a=list(map(int,sys.argv[1:4])); b=list(map(int,sys.argv[4:7])); print('%d%%' % round(100*((b[0]-a[0])-(b[2]-a[2]))/max(1,b[1]-a[1])))" $1 $2; }
check_store() {  # DIR COUNT: every file done, moved and recorded once, one attempt each (nothing ran twice)
    local got; got=$(sqlite3 "$1/.orchestrator/orchestrator.sqlite" "select (select count(*) from job where state='done' and final_path is not null) || ' ' || (select count(*) from job) || ' ' || (select count(*) from attempt)")
    [ "$got" = "$2 $2 $2" ] || { echo "bench: store has done+moved/jobs/attempts $got, want $2 each" >&2; exit 1; }
    [ "$(find "$1/Done" -type f | wc -l)" = "$2" ] || { echo "bench: Done does not hold $2 files" >&2; exit 1; }
}

declare -A R
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
floor_rate() {  # COUNT CONCURRENCY: prints files/s; leaves "OWN WORKERS" (CPU ms per file) in $work/floor_cpu
    rm -rf "$work/fl" && make_files "$work/fl/in" "$1" && mkdir -p "$work/fl/out"
    "$work/floor" "$work/fl/in" "$work/fl/out" "$2" > "$work/floor_out"
    sed -n 's/^floor cpu: own \([0-9.]*\) ms\/file, workers \([0-9.]*\) ms\/file/\1 \2/p' "$work/floor_out" > "$work/floor_cpu"
    sed -n 's/.*= \([0-9]*\) files\/s/\1/p' "$work/floor_out"
}
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }
per_file() { python3 -c "print('%.3f' % (($2 - $1) / $3))"; }  # CPU_MS_BEFORE CPU_MS_AFTER FILES -> ms
RUN_LINES=()
burst() {  # RUN CONCURRENCY VARIANT ENV: 5,000 files renamed into a running daemon
    local d="$work/t$2" t0 t1 c0 c1 w0 w1 k0 k1
    instance "$d" "$2"; make_files "$d/stage" "$N"; start_daemon "$d" "$4"
    c0=$(cpu_ms $pid); w0=$(children_ms $pid); k0=$(ticks $pid)
    if [ "${HARNESS:-c}" = python ]; then  # the Python mover and store poller of earlier measurements
        t0=$(move_all "$d/stage" "$d/Inbox"); t1=$(wait_count "$d/Done" "$N" "$d/.orchestrator/orchestrator.sqlite")
    else
        read -r t0 t1 < <("$work/burst" "$d/stage" "$d/Inbox" "$d/Done" "$N" "$d/.orchestrator/orchestrator.sqlite")
    fi
    c1=$(cpu_ms $pid); w1=$(children_ms $pid); k1=$(ticks $pid)
    stop_daemon; check_store "$d" "$N"
    local r floor_own floor_workers; r=$(rate "$N" "$t0" "$t1"); read -r floor_own floor_workers < "$work/floor_cpu"
    R[burst_c$2_$3_$1]=$(ratio "$r" "${R[floor_c$2_$1]}"); R[cpu_c$2_$3_$1]=$(per_file "$c0" "$c1" "$N")
    RUN_LINES+=("run $1 burst c=$2 $3: $r files/s, floor ${R[floor_c$2_$1]}, ratio ${R[burst_c$2_$3_$1]}, daemon CPU ${R[cpu_c$2_$3_$1]} ms/file, its workers $(per_file "$w0" "$w1" "$N") (the floor: own $floor_own, workers $floor_workers), others used $(others "$k0" "$k1") of the machine")
    echo "${RUN_LINES[-1]}"
}
backlog_run() {  # RUN VARIANT ENV: 50,000 files in Inbox at start, c=2
    local d="$work/bl" t0 t1 c1 w1 k0 k1
    instance "$d" 2; make_files "$d/Inbox" "$BACKLOG"
    t0=$(now); start_daemon "$d" "$3"; k0=$(ticks $pid)
    if [ "${HARNESS:-c}" = python ]; then
        t1=$(wait_count "$d/Done" "$BACKLOG" "$d/.orchestrator/orchestrator.sqlite")
    else  # the burst's waiter with nothing to move
        mkdir -p "$d/nothing"; read -r _ t1 < <("$work/burst" "$d/nothing" "$d/Inbox" "$d/Done" "$BACKLOG" "$d/.orchestrator/orchestrator.sqlite")
    fi
    c1=$(cpu_ms $pid); w1=$(children_ms $pid); k1=$(ticks $pid); local hwm; hwm=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' /proc/$pid/status)
    stop_daemon; check_store "$d" "$BACKLOG"
    local r floor_own floor_workers; r=$(rate "$BACKLOG" "$t0" "$t1"); read -r floor_own floor_workers < "$work/floor_cpu"
    R[backlog_$2_$1]=$(ratio "$r" "${R[floor_backlog_$1]}"); R[backlog_cpu_$2_$1]=$(per_file 0 "$c1" "$BACKLOG")
    RUN_LINES+=("run $1 backlog c=2 $2: $r files/s, floor ${R[floor_backlog_$1]}, ratio ${R[backlog_$2_$1]}, daemon CPU ${R[backlog_cpu_$2_$1]} ms/file, its workers $(per_file 0 "$w1" "$BACKLOG") (the floor: own $floor_own, workers $floor_workers), peak RSS $hwm MB, others used $(others "$k0" "$k1") of the machine")
    echo "${RUN_LINES[-1]}"
}
spread() {  # PREFIX: min median max of R[PREFIX_1..RUNS]
    local v=() i; for i in $(seq 1 "$RUNS"); do v+=("${R[$1_$i]}"); done
    python3 -c "import statistics,sys; v=sorted(map(float,sys.argv[1:])); print('min %.2f  median %.2f  max %.2f' % (v[0], statistics.median(v), v[-1]))" "${v[@]}"
}

for part in "${parts[@]}"; do case $part in
throughput)
    for run in $(seq 1 "$RUNS"); do
        for c in 2 4; do
            R[floor_c${c}_$run]=$(floor_rate "$N" "$c")
            for v in $VARIANTS; do burst "$run" "$c" "${v%%:*}" "${v#*:}"; done
        done
    done
    d="$work/pipe"; mkdir -p "$d/Inbox" "$d/Done"; make_files "$d/stage" "$N"
    pipeline "$d"
    sleep 1; t0=$(move_all "$d/stage" "$d/Inbox"); t1=$(wait_count "$d/Done" "$N")
    R[pipeline]=$(rate "$N" "$t0" "$t1"); kill $ipid; wait $ipid || true; ipid=
    R[pipeline_floor]=$(floor_rate "$N" 2)
    ;;
latency)
    d="$work/lat"; instance "$d" 2; start_daemon "$d"
    R[orch_latency]=$("$work/latency" "$d" "$LATENCY_RUNS"); kill $pid; wait $pid || true; pid=
    d="$work/latpipe"; mkdir -p "$d/Inbox" "$d/Done"
    pipeline "$d"
    sleep 1; R[pipeline_latency]=$("$work/latency" "$d" "$LATENCY_RUNS"); kill $ipid; wait $ipid || true; ipid=
    ;;
idle)
    # Per variant; HTTP=0 serves the API without a poller (idle with the dashboard closed).
    for v in $VARIANTS; do
        d="$work/idle"; instance "$d" 2; start_daemon "$d" "${v#*:}"; sleep 2
        # perf's task-clock counts every thread to the microsecond; /proc's ticks are 10 ms each.
        if perf stat -e task-clock true >/dev/null 2>&1; then
            R[idle_cpu_ms_30s_${v%%:*}]=$(perf stat -x, -e task-clock -p $pid -- sleep 30 2>&1 | awk -F, '/task-clock/ {printf "%.2f", $1}')
        else
            a=$(cpu_ms $pid); sleep 30; b=$(cpu_ms $pid); R[idle_cpu_ms_30s_${v%%:*}]=$((b - a))
        fi
        R[idle_rss_mb_${v%%:*}]=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status)
        stop_daemon
    done
    ;;
backlog)
    for run in $(seq 1 "$RUNS"); do
        R[floor_backlog_$run]=$(floor_rate "$BACKLOG" 2)
        for v in $VARIANTS; do backlog_run "$run" "${v%%:*}" "${v#*:}"; done
    done
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
printf '%s\n' "${RUN_LINES[@]}"
echo
for key in $(printf '%s\n' "${!R[@]}" | grep -v -E '^(floor|burst|cpu|backlog)' | sort); do printf '%-22s %s\n' "$key" "${R[$key]}"; done
for v in $VARIANTS; do v=${v%%:*}
    if [ -n "${R[floor_c2_1]:-}" ]; then
        echo "burst c=2 $v vs floor (c=2): $(spread burst_c2_$v); daemon ms/file $(spread cpu_c2_$v)"
        echo "burst c=4 $v vs floor (c=4): $(spread burst_c4_$v); daemon ms/file $(spread cpu_c4_$v)"
    fi
    [ -n "${R[floor_backlog_1]:-}" ] && echo "backlog c=2 $v vs floor (c=2): $(spread backlog_$v); daemon ms/file $(spread backlog_cpu_$v)"
done
echo "(target: every run >= 0.70; aim 0.85)"
[ -n "${R[pipeline]:-}" ] && echo "pipeline (xargs -P2) vs floor (c=2): $(ratio "${R[pipeline]}" "${R[pipeline_floor]}")"
for v in $VARIANTS; do v=${v%%:*}
    [ -n "${R[idle_cpu_ms_30s_$v]:-}" ] && echo "idle $v: ${R[idle_cpu_ms_30s_$v]} ms CPU in 30 s (target < 10), RSS ${R[idle_rss_mb_$v]} MB (target < 30)"
done
exit 0
