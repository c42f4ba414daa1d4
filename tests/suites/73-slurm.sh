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
#  3. every daemon it started is stopped by process id and its files removed.
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

cleanup
trap - EXIT
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && { echo "FAIL: daemon $p still running"; fail=1; }; done
[ -e "$S" ] && { echo "FAIL: $S left behind"; fail=1; }
echo "  73-slurm: $(( $(date +%s) - t0 )) s, daemons stopped, files removed"
exit $fail
