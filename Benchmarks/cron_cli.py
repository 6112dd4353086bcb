#!/usr/bin/env python3
"""`orchestrator cron next` as a whole process against cronsim (the Python library), run by
`Benchmarks/bench.sh cron-cli`. Both print the next N fire times of the same expressions in Europe/Berlin from
2026-01-01T00:00:00Z, one ISO-8601 line with offset per fire, to /dev/null and to a pipe; the runs are
interleaved and each run's ratio ours/cronsim is computed within that run (the machine is noisy).

The expressions: a dense wildcard job, weekdays, a fixed-time job in Berlin's spring-forward gap and autumn
overlap (02:30), a wildcard job through both changes (every 15 minutes from 01:00 to 03:45) and a monthly one.
Before timing, ours and cronsim must print the same bytes for the first CRONSIM_COUNT fires of each.

cronsim stops at year 9999 (Python's datetime), so it prints 90,000 fires of each expression (the monthly
one ends in 9526); ours prints 1,000,000 (so that process start is a small part of its time), except 400,000
of the monthly one: ours stops at 2^40 s after 1970, in the year 36812, after 417,434 months.
"""
import argparse
import os
import subprocess
import sys
import time

EXPRESSIONS = ["*/5 * * * *", "0 9 * * 1-5", "30 2 * * *", "*/15 1-3 * * *", "0 0 1 * *"]
ZONE = "Europe/Berlin"
FROM = "2026-01-01T00:00:00Z"
OURS_COUNT_LIMIT = {"0 0 1 * *": 400_000}

CRONSIM_SCRIPT = r"""
import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo
from cronsim import CronSim
expression, count = sys.argv[1], int(sys.argv[2])
zone = ZoneInfo(%r)
fires = CronSim(expression, datetime(2026, 1, 1, tzinfo=timezone.utc).astimezone(zone))
write = sys.stdout.write
for _ in range(count):
    write(next(fires).isoformat())
    write("\n")
""" % ZONE


def ours(binary, expression, count):
    return [binary, "cron", "next", expression, "--count", str(count), "--tz", ZONE, "--from", FROM]


def cronsim(expression, count):
    return [sys.executable, "-c", CRONSIM_SCRIPT, expression, str(count)]


def timed(command, lines, to_pipe):
    """Seconds the whole process took; checks it printed `lines` lines."""
    start = time.perf_counter()
    if to_pipe:
        process = subprocess.Popen(command, stdout=subprocess.PIPE)
        newlines = 0
        while chunk := os.read(process.stdout.fileno(), 1 << 20):
            newlines += chunk.count(b"\n")
        status = process.wait()
    else:
        with open(os.devnull, "wb") as null:
            status = subprocess.run(command, stdout=null).returncode
        newlines = lines
    elapsed = time.perf_counter() - start
    if status != 0 or newlines != lines:
        sys.exit("%s: status %d, %d lines of %d" % (command, status, newlines, lines))
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--orchestrator", required=True)
    parser.add_argument("--bench", help="orchestrator-bench, for the in-process figure")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ours-count", type=int, default=1_000_000)
    parser.add_argument("--cronsim-count", type=int, default=90_000)
    options = parser.parse_args()

    for expression in EXPRESSIONS:
        mine = subprocess.run(ours(options.orchestrator, expression, options.cronsim_count), capture_output=True, check=True).stdout
        theirs = subprocess.run(cronsim(expression, options.cronsim_count), capture_output=True, check=True).stdout
        if mine != theirs:
            sys.exit("ours and cronsim differ for %r" % expression)
    print("ours and cronsim print the same %d lines for each of: %s" % (options.cronsim_count, ", ".join(EXPRESSIONS)))
    print("ours: %s fires per expression, cronsim: %d; %s from %s" % (
        "/".join(str(min(options.ours_count, OURS_COUNT_LIMIT.get(e, options.ours_count))) for e in EXPRESSIONS),
        options.cronsim_count, ZONE, FROM))

    header = "%-4s %12s %12s %12s %12s %9s %9s %14s %s" % (
        "run", "ours null/s", "cronsim null", "ours pipe/s", "cronsim pipe", "ratio nul", "ratio pip",
        "min per expr", "in-process")
    print(header)
    ratios = []
    expression_ratios = []
    ours_counts = {e: min(options.ours_count, OURS_COUNT_LIMIT.get(e, options.ours_count)) for e in EXPRESSIONS}
    for run in range(1, options.runs + 1):
        # Seconds per fire, per expression and tool/output; a tool's rate weighs the five expressions equally
        # (the harmonic mean of its per-expression rates), whatever the count each printed.
        per_fire = {key: [] for key in ("ours null", "cronsim null", "ours pipe", "cronsim pipe")}
        per_expression = []
        for expression in EXPRESSIONS:
            mine = ours_counts[expression]
            for to_pipe in (False, True):
                mode = "pipe" if to_pipe else "null"
                ours_time = timed(ours(options.orchestrator, expression, mine), mine, to_pipe) / mine
                cronsim_time = timed(cronsim(expression, options.cronsim_count), options.cronsim_count, to_pipe) / options.cronsim_count
                per_fire["ours " + mode].append(ours_time)
                per_fire["cronsim " + mode].append(cronsim_time)
                per_expression.append((cronsim_time / ours_time, expression))
        rate = {key: len(times) / sum(times) for key, times in per_fire.items()}
        ratio_null = rate["ours null"] / rate["cronsim null"]
        ratio_pipe = rate["ours pipe"] / rate["cronsim pipe"]
        ratios += [ratio_null, ratio_pipe]
        expression_ratios += per_expression
        in_process = ""
        if options.bench:
            output = subprocess.run([options.bench, "cron"] + EXPRESSIONS, capture_output=True, text=True, check=True).stdout
            # The existing figure (next-fire from random instants, 16 expressions x 4 zones) and, where the build
            # has it, fires in sequence over these expressions.
            in_process = "; ".join(line.split(": ", 1)[1] for line in output.splitlines()
                                   if line.startswith("cron next-fire:") or "in sequence" in line)
        print("%-4d %12.0f %12.0f %12.0f %12.0f %9.1f %9.1f %14.1f %s" % (
            run, rate["ours null"], rate["cronsim null"], rate["ours pipe"], rate["cronsim pipe"], ratio_null, ratio_pipe,
            min(per_expression)[0], in_process))
        sys.stdout.flush()
    print("ratio ours/cronsim over all runs and both outputs: %.1f-%.1f; single expressions %.1f (%s) to %.1f (%s)" % (
        min(ratios), max(ratios), *min(expression_ratios), *max(expression_ratios)))


main()
