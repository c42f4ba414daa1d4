#!/usr/bin/env bash
# 73-slurm: `clens study --slurm` against a real Slurm (issue 21; docs/cluster.md).
# Starts munged, slurmctld and slurmd on this machine with a generated minimal
# configuration (one node with this machine's CPUs and memory, proctrack/linuxproc,
# task/none, state and logs in a temporary folder, private ports), waits until
# the node is idle, then:
#  1. a study of two tiny models (qwen2 4 layers, olmo3 8 layers) run locally
#     without shards (the reference), then with --shards 3 --slurm: one job
#     array of 6 tasks + a final afterok job; the merged results.json of each
#     model equals the local run's apart from "timing", and comparison/ and
#     study.md equal the local ones byte for byte;
#  2. a second submission killed mid-run (scancel --signal=KILL of the array
#     and the final job once the first task has finished); rerunning the
#     command submits only the unfinished tasks and finishes the study with
#     the same results;
#  4. a checkpoint series (6 planted checkpoints) and a plain model with --shards 2: one array of
#     14 (checkpoint or model) x shard tasks, the final job merges, fits the dynamics and compares;
#     dynamics, comparison and study.md equal a local unsharded run byte for byte;
#  5. an on-policy study with --shards 2: a pairs array (one generation task per model), the shard
#     array afterok on it, the final job; equal to the local run byte for byte;
#  6. every daemon it started is stopped by process id and its files removed.
# Needs slurm-wlm and munge (tools/install-deps.sh) and root (slurmd launches
# jobs); without root it says SKIP.
# Env (tests/run.sh): CLENS, ROOT, SHARED, PY, CLENS_TEST_TMP.
set -u
cd "$ROOT"
. "$ROOT/tests/suites/lib.sh"
for b in munged mungekey slurmctld slurmd sbatch squeue scancel sinfo; do
  command -v $b >/dev/null 2>&1 || { echo "FAIL: $b not installed (tools/install-deps.sh installs slurm-wlm munge)"; exit 1; }
done
[ "$(id -u)" -eq 0 ] || { echo "  SKIP: 73-slurm needs root (slurmd launches the jobs)"; exit 0; }
T=$CLENS_TEST_TMP/slurm
rm -rf "$T"; mkdir -p "$T"
S=$(mktemp -d /tmp/clens-slurm.XXXXXX)   # short path: the munge socket name must fit sun_path
fail=0
t0=$(date +%s)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null
  done
  rm -rf "$S"
}
trap cleanup EXIT

# ------------------------------------------------------------ the daemons
mkdir -p "$S/state" "$S/spool" "$S/log" "$S/munge"; chmod 700 "$S/munge"
mungekey -c -k "$S/munge/munge.key" >/dev/null 2>&1 && chmod 600 "$S/munge/munge.key" || { echo "FAIL: mungekey"; exit 1; }
munged --force --key-file="$S/munge/munge.key" --socket="$S/munge/sock" --pid-file="$S/munge/munged.pid" \
  --log-file="$S/munge/munged.log" --seed-file="$S/munge/munged.seed" || { echo "FAIL: munged"; exit 1; }
pids+=("$(cat "$S/munge/munged.pid")")
H=$(hostname -s)
port=$(( 20000 + ($$ * 7 + $(date +%N | sed 's/^0*//;s/^$/0/')) % 30000 ))
mem=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)
cat >"$S/slurm.conf" <<EOF
ClusterName=clenstest
SlurmctldHost=$H
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$S/munge/sock
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/log/slurmctld.log
SlurmdLogFile=$S/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MpiDefault=none
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=$H CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$S/slurm.conf
slurmctld -f "$SLURM_CONF" -i >/dev/null 2>&1 || { echo "FAIL: slurmctld"; cat "$S/log/slurmctld.log"; exit 1; }
for _ in $(seq 1 50); do [ -s "$S/slurmctld.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$S/slurmctld.pid")")
slurmd -f "$SLURM_CONF" -N "$H" >/dev/null 2>&1 || { echo "FAIL: slurmd"; cat "$S/log/slurmd.log"; exit 1; }
for _ in $(seq 1 50); do [ -s "$S/slurmd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$S/slurmd.pid")")
idle=0
for _ in $(seq 1 300); do
  [ "$(sinfo -h -o %t 2>/dev/null)" = "idle" ] && { idle=1; break; }
  sleep 0.1
done
[ $idle -eq 1 ] || { echo "FAIL: the node never became idle"; sinfo; tail -20 "$S/log/slurmctld.log"; exit 1; }
echo "  slurm: munged, slurmctld, slurmd up (pids ${pids[*]}), node $H idle after $(( $(date +%s) - t0 )) s"

# ------------------------------------------------------------ the study
$PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 4 --vocab 151936 --seed 3 --quiet --out "$T/qwen2-4" || exit 1
qwen_tokenizer "$T/qwen2-4"
$PY tools/gen_model.py --arch olmo3 --dtype f32 --layers 8 --sliding-window 16 --vocab 100278 --seed 4 --quiet \
   --out "$T/olmo3-8" || exit 1
cp "$SHARED/tokenizers/dolma2/tokenizer.json" "$T/olmo3-8/"
cat >"$T/study.json" <<EOF
{"out": "$T/s",
 "models": [{"label": "Q4", "model": "$T/qwen2-4", "training": "SFT"},
            {"label": "O8", "model": "$T/olmo3-8", "training": "RL"}],
 "pairs": {"mode": "build", "data": "$SHARED/data/gsm8k/test.jsonl", "format": "gsm8k", "limit": 24},
 "prompt": "raw", "filter": "seed", "min_diff": 0, "n": 6, "bootstrap": 100, "compare_resamples": 200}
EOF
tl=$(date +%s%N)
check $CLENS study "$T/study.json" --threads 1 --quiet
echo "  local run (no shards): $(( ($(date +%s%N) - tl) / 1000000 )) ms"
mv "$T/s" "$T/s-local"

# the dry run prints the scripts and submits nothing
plan=$($CLENS study "$T/study.json" --shards 3 --slurm --dry-run --threads 1)
grep -q -- "--array=0,1,2,3,4,5" <<<"$plan" && grep -q "#SBATCH --mem=" <<<"$plan" && [ ! -e "$T/s" ] \
  || { echo "FAIL: slurm dry run"; echo "$plan"; fail=1; }

wait_done() {  # waits (bound 150 s) until the queue is empty
  for _ in $(seq 1 1500); do
    [ -z "$(squeue -h 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  echo "FAIL: jobs still queued after 150 s"; squeue; return 1
}
same_as_local() {
  $PY - "$T/s-local" "$T/s" <<'PYEOF'
import json, sys
a, b = sys.argv[1:3]
for m in ("Q4", "O8"):
    x, y = json.load(open(f"{a}/runs/{m}/results.json")), json.load(open(f"{b}/runs/{m}/results.json"))
    x.pop("timing"); y.pop("timing")
    assert x == y, f"{m}: merged results.json differs from the local run's"
for f in ("comparison/comparison.md", "comparison/comparison.json", "comparison/pairs.csv", "study.md"):
    assert open(f"{a}/{f}", "rb").read() == open(f"{b}/{f}", "rb").read(), f + " differs"
PYEOF
}

ts=$(date +%s%N)
out=$($CLENS study "$T/study.json" --shards 3 --slurm --threads 1) || { echo "FAIL: submit: $out"; fail=1; }
echo "  $out"
grep -q "tasks 0,1,2,3,4,5 of 6" <<<"$out" || { echo "FAIL: not 6 tasks"; fail=1; }
wait_done || fail=1
echo "  slurm run (2 models x 3 shards + final job): $(( ($(date +%s%N) - ts) / 1000000 )) ms"
[ -f "$T/s/study.md" ] || { echo "FAIL: the final job did not run"; cat "$T/s/slurm/"*.log; fail=1; }
check same_as_local
echo "  merged results = local run (results.json apart from timing; comparison and study.md byte for byte)"

# ----------------------------------------- killed mid-run, then resubmitted
mv "$T/s" "$T/s-first"
out=$($CLENS study "$T/study.json" --shards 3 --slurm --threads 1) || { echo "FAIL: submit 2: $out"; fail=1; }
jid=$(sed -n 's/^submitted job array \([0-9]*\) .* final job \([0-9]*\) .*/\1 \2/p' <<<"$out")
for _ in $(seq 1 600); do
  n=$(ls "$T"/s/shards/*/*/results.json 2>/dev/null | wc -l)
  [ "$n" -ge 1 ] && break
  sleep 0.05
done
scancel --signal=KILL $jid 2>/dev/null; scancel $jid 2>/dev/null
wait_done || fail=1
[ -f "$T/s/study.md" ] && { echo "FAIL: the study finished before the kill"; fail=1; }
finished=$(ls "$T"/s/shards/*/*/results.json 2>/dev/null | wc -l)
[ "$finished" -ge 1 ] && [ "$finished" -lt 6 ] || { echo "FAIL: $finished of 6 tasks finished at the kill"; fail=1; }
out=$($CLENS study "$T/study.json" --shards 3 --slurm --threads 1) || { echo "FAIL: resubmit: $out"; fail=1; }
echo "  killed with $finished of 6 tasks finished; resubmitted: $out"
left=$(sed -n 's/.*(tasks \([0-9,]*\) of 6).*/\1/p' <<<"$out" | tr ',' '\n' | grep -c .)
[ "$left" -eq $((6 - finished)) ] || { echo "FAIL: resubmitted $left tasks, $((6 - finished)) were unfinished"; fail=1; }
wait_done || fail=1
[ -f "$T/s/study.md" ] || { echo "FAIL: the resubmitted study did not finish"; fail=1; }
check same_as_local
echo "  resubmission finished the study; results = local run"

# ------------------------------- 4. a checkpoint series x shards on Slurm
# The 76-dynamics construction, 6 checkpoints (0..2000 every 400) of a linear switch, plus a plain
# model: 6 x 2 + 2 run tasks; the final job merges each checkpoint's shards and fits the dynamics.
C=$T/ck
switch_endpoints "$C" 30
$PY tools/plant_transition.py "$C/A" "$C/B" --out "$C/lin" --steps 0:2000:400 --schedule linear --only o_proj || exit 1
cat >"$C/study.json" <<EOF
{"out": "$C/s",
 "models": [{"label": "series", "checkpoints": ["$C/lin/step-*"], "training": "SFT"},
            {"label": "B", "model": "$C/B", "training": "RL"}],
 "pairs": {"mode": "file", "file": "$C/pairs.jsonl"},
 "prompt": "raw", "filter": "seed", "min_diff": 0, "n": 6, "bootstrap": 100, "compare_resamples": 100,
 "dynamics": {"resamples": 50}}
EOF
tl=$(date +%s%N)
check $CLENS study "$C/study.json" --threads 1 --quiet
echo "  checkpoints, local run (no shards): $(( ($(date +%s%N) - tl) / 1000000 )) ms"
mv "$C/s" "$C/s-local"
ts=$(date +%s%N)
out=$($CLENS study "$C/study.json" --shards 2 --slurm --threads 1) || { echo "FAIL: submit checkpoints: $out"; fail=1; }
echo "  $out"
grep -q "tasks 0,1,2,3,4,5,6,7,8,9,10,11,12,13 of 14" <<<"$out" || { echo "FAIL: not 14 checkpoint x shard tasks"; fail=1; }
wait_done || fail=1
echo "  checkpoints, slurm run (6 checkpoints x 2 shards + 1 model x 2 shards + final job): $(( ($(date +%s%N) - ts) / 1000000 )) ms"
[ -f "$C/s/study.md" ] || { echo "FAIL: the checkpoint final job did not run"; cat "$C/s/slurm/"*.log; fail=1; }
check $PY - "$C/s-local" "$C/s" <<'PYEOF'
import json, os, sys
a, b = sys.argv[1:3]
for r in sorted(os.listdir(a + "/dynamics/series/runs")):
    x, y = (json.load(open(f"{d}/dynamics/series/runs/{r}/results.json")) for d in (a, b))
    x.pop("timing"); y.pop("timing")
    assert x == y, r + ": merged results.json differs from the local run's"
for f in ("dynamics/series/dynamics.json", "dynamics/series/dynamics.md", "dynamics/series/heatmap.svg",
          "dynamics/series/curves.svg", "comparison/comparison.md", "comparison/comparison.json", "study.md"):
    assert open(f"{a}/{f}", "rb").read() == open(f"{b}/{f}", "rb").read(), f + " differs"
assert "## Training dynamics: series (6 checkpoints" in open(b + "/study.md").read()
print("  checkpoint x shard array = local run (dynamics, comparison, study.md byte for byte)")
PYEOF

# ------------------------------- 5. on-policy pairs with shards on Slurm
# Two models planted to write a fixed solution (tools/plant_chain.py, then a little attention back so
# clean and corrupted differ): a pairs array (one generation task per model), the shard array
# --dependency=afterok on it, the final job afterok on that.
O=$T/op
mkdir -p "$O"
Q="$SHARED/tokenizers/qwen2.5"
for sd in 11 12; do
  M=$O/m$sd
  $PY tools/gen_model.py --arch qwen2 --dtype f32 --layers 2 --hidden 64 --vocab 151936 --untied --seed $sd --quiet --out "$M" || exit 1
  cp "$Q/vocab.json" "$Q/merges.txt" "$Q/tokenizer_config.json" "$M/"
  echo '{"eos_token_id": 151643}' >"$M/generation_config.json"
  cp "$M/model.safetensors" "$O/orig.safetensors"
  chain=$($CLENS tokenize "$M" --no-special --text $'Solution: 12*5=60 apples\nSo total') || exit 1
  $PY tools/plant_chain.py "$M" --chain "${chain#*,},151643" || exit 1
  $PY - "$O/orig.safetensors" "$M/model.safetensors" <<'PYEOF' || exit 1
import sys
sys.path.insert(0, "tools")
import st_file as pt
o, p = pt.read_f32(sys.argv[1]), pt.read_f32(sys.argv[2])
pt.write_f32(sys.argv[2], {k: (o[k] * 0.2 if "o_proj" in k else v) for k, v in p.items()})
PYEOF
done
cat >"$O/data.jsonl" <<'EOF'
{"id": "p1", "problem": "What is $12 \\cdot 5 + 7$?", "solution": "We get $12\\cdot 5 + 7 = \\boxed{67}$."}
{"id": "p2", "problem": "How many apples?", "solution": "There are $\\boxed{60}$."}
{"id": "p3", "problem": "Compute $2+2$.", "solution": "$2+2=\\boxed{4}$"}
{"id": "p4", "problem": "Compute $3+3$.", "solution": "$3+3=\\boxed{6}$"}
{"id": "p5", "problem": "Compute $5+5$.", "solution": "$5+5=\\boxed{10}$"}
EOF
cat >"$O/study.json" <<EOF
{"out": "$O/s", "models": [{"label": "M11", "model": "$O/m11"}, {"label": "M12", "model": "$O/m12"}],
 "pairs": {"mode": "on-policy", "data": "$O/data.jsonl", "format": "math", "max_new": 24, "batch": 2},
 "prompt": "raw", "filter": "seed", "min_diff": 0, "n": 4, "bootstrap": 50, "compare_resamples": 50}
EOF
tl=$(date +%s%N)
check $CLENS study "$O/study.json" --threads 1 --quiet
echo "  on-policy, local run (no shards): $(( ($(date +%s%N) - tl) / 1000000 )) ms"
mv "$O/s" "$O/s-local"
plan=$($CLENS study "$O/study.json" --shards 2 --slurm --dry-run --threads 1)
grep -q -- "--array=0,1 " <<<"$plan" && grep -q -- "--array=2,3,4,5 --dependency=afterok:<pairs array job id>" <<<"$plan" \
  || { echo "FAIL: on-policy slurm dry run"; echo "$plan"; fail=1; }
ts=$(date +%s%N)
out=$($CLENS study "$O/study.json" --shards 2 --slurm --threads 1) || { echo "FAIL: submit on-policy: $out"; fail=1; }
echo "  $out"
grep -q "submitted pairs array [0-9]* (tasks 0,1); submitted job array [0-9]* (tasks 2,3,4,5 of 6)" <<<"$out" \
  || { echo "FAIL: not a pairs array + a shard array"; fail=1; }
wait_done || fail=1
echo "  on-policy, slurm run (2 generation tasks, then 2 models x 2 shards, then the final job): $(( ($(date +%s%N) - ts) / 1000000 )) ms"
[ -f "$O/s/study.md" ] || { echo "FAIL: the on-policy final job did not run"; cat "$O/s/slurm/"*.log; fail=1; }
check $PY - "$O/s-local" "$O/s" <<'PYEOF'
import json, sys
a, b = sys.argv[1:3]
for f in ("pairs/M11.jsonl", "pairs/M12.jsonl", "comparison/comparison.md", "comparison/comparison.json",
          "comparison/pairs.csv", "study.md"):
    assert open(f"{a}/{f}", "rb").read() == open(f"{b}/{f}", "rb").read(), f + " differs"
for m in ("M11", "M12"):
    x, y = json.load(open(f"{a}/runs/{m}/results.json")), json.load(open(f"{b}/runs/{m}/results.json"))
    x.pop("timing"); y.pop("timing")
    assert x == y and x["counts"]["kept"] > 0, m
print("  on-policy sharded study on Slurm = local run (pairs, comparison, study.md byte for byte)")
PYEOF

cleanup
trap - EXIT
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && { echo "FAIL: daemon $p still running"; fail=1; }; done
[ -e "$S" ] && { echo "FAIL: $S left behind"; fail=1; }
echo "  73-slurm: $(( $(date +%s) - t0 )) s, daemons stopped, files removed"
exit $fail
