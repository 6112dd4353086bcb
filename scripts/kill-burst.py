#!/usr/bin/env python3
# Field check: bursts of files into a daemon killed with SIGKILL at random moments, then restarted; afterwards
# every file must be in Done/ or Failed/, and it prints which files ran again after a run of theirs had
# completed, with how long before the next kill that run ended (the window guarantee 2 leaves: see README,
# "Recording before moving"). A run that ended just after a kill (its worker outlived the killed daemon by a few
# milliseconds) is measured to the next kill, hundreds of ms later: those are printed with their events and kills.
#
#   scripts/kill-burst.py BIN ROUNDS FILES      e.g. scripts/kill-burst.py .build/release/orchestrator 5 500
#
# Bundled config with max_concurrent = 4 and a worker that logs its start and its end (with the time) in
# /tmp/kc/runs.log; three kills per round, 0.1-0.9 s apart.
import os, random, re, subprocess, sys, time, shutil
binary, rounds, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
root = "/tmp/kc"; shutil.rmtree(root, ignore_errors=True)
subprocess.run([binary, "init", root], check=True, capture_output=True)
cfg = f"{root}/config/orchestrator.toml"
text = open(cfg).read()
text = re.sub(r'^command *= \["../workers/process.sh", "\{file\}"\].*$',
              '''command = ["/bin/sh", "-c", 'echo "s $ORCH_NAME" >> ../runs.log; sleep 0.005; echo "e $ORCH_NAME $(date +%s%N)" >> ../runs.log']''',
              text, flags=re.M)
text = text.replace("max_concurrent      = 2", "max_concurrent = 4")
open(cfg, "w").write(text)
kills = []
def start():
    return subprocess.Popen([binary, "watch", "--config", cfg], stderr=open(f"{root}/daemon.log", "a"))
for r in range(rounds):
    os.makedirs(f"{root}/stage", exist_ok=True)
    for i in range(n): open(f"{root}/stage/r{r}-{i}.txt", "w").write("x")
    p = start(); time.sleep(0.5)
    for i in range(n): os.rename(f"{root}/stage/r{r}-{i}.txt", f"{root}/Inbox/r{r}-{i}.txt")
    for k in range(3):
        time.sleep(random.uniform(0.1, 0.9))
        p.kill(); kills.append(time.time_ns()); p.wait()
        p = start(); time.sleep(0.3)
    deadline = time.time() + 60
    while time.time() < deadline:
        done = sum(1 for f in os.listdir(f"{root}/Done") if f.startswith(f"r{r}-"))
        if done >= n: break
        time.sleep(0.2)
    p.terminate(); p.wait()
events = {}
for line in open(f"{root}/runs.log"):
    parts = line.split()
    events.setdefault(parts[1], []).append((parts[0], int(parts[2]) if parts[0] == "e" else None))
failed = len(os.listdir(f"{root}/Failed")); done = len(os.listdir(f"{root}/Done"))
redone = []
for name, seq in events.items():
    for i, (kind, at) in enumerate(seq):
        if kind == "e" and any(k == "s" for k, _ in seq[i + 1:]):
            after = [k for k in kills if k > at]
            redone.append((name, (after[0] - at) / 1e6 if after else -1))
starts = {name: sum(1 for k, _ in seq if k == "s") for name, seq in events.items()}
open(f"{root}/kills.txt","w").write("\n".join(map(str,kills)))
for name, gap in redone:
    if gap > 50:
        print(name, events[name], "kills:", [k for k in kills if abs(k - [a for t, a in events[name] if t == "e"][0]) < 3e9])
print(f"files {rounds*n}: done {done} failed {failed}; ran more than once {sum(1 for c in starts.values() if c > 1)}; completed then ran again {len(redone)}: " + ", ".join(f"{a} ({b:.0f} ms before the kill)" for a, b in sorted(redone, key=lambda x: x[1])))
