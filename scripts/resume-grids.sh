#!/usr/bin/env bash
# The open issues' training grids (28: the fair fight, 32: the critics' protocol), in order, each
# resumable: stored runs are skipped and a deep run cut short resumes from its checkpoint in the model
# cache. A session's machine keeps nothing outside the checkout, so this is how the next one goes on.
#
#   scripts/resume-grids.sh [STEP ...]     default: pilot table1-fmnist unseen authors table1-mosaic
#                                          (the Table II steps table2-*: only when named, first, on a
#                                          quiet machine)
#
# Each step runs from a git worktree pinned at one commit (GRID_COMMIT), so the code that trains is the
# commit its records name while main moves on; records land in this checkout's results/. While it runs,
# commit records by path after `make report`, never `git commit -a`. Table II's timings need a quiet
# machine and are not here: never time beside this (issue 30).
# Logs: $GRID_HOME/<step>.log; models and checkpoints: $GRID_HOME/cache. A session's machine goes away at
# its end with the runs it is training: start this with HASHBENCH_START_UNTIL set one run's length
# before then (a mosaic pilot run: ~30 min, 2 at a time), e.g. HASHBENCH_START_UNTIL=2026-12-07T05:00Z,
# and no run starts after it (protocols/grid.py); the steps after it then start nothing either.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# 68b0755: subnormal floats flushed in training (5-12x faster where weights decay into them; a run as
# from another CPU model, named in its fit_info), otherwise training as 8851da4, ba8ca8b and 16caaaa did;
# the mosaic pilot's last runs (classifier x27, CSQ and OrthoHash x81) too, its report names them apart
GRID_COMMIT="${GRID_COMMIT:-68b0755}"
# fashion-mosaic's Table I trains at the commit whose training_budget.json lists fashion-mosaic (its pilot's
# rule, issue 28); empty until that commit exists. Its own commit, so that Fashion-MNIST's table, begun at
# GRID_COMMIT, stays one commit while the mosaic rule lands later.
MOSAIC_RULE_COMMIT="${MOSAIC_RULE_COMMIT:-78689e2}"  # the mosaic pilot's rule (and subnormals flushed, 68b0755)
# Table II's runs (issue 30): 6b186c3 has the tree kernel whose leaves' parents scan their kept leaves in
# layout order (78689e2 before, the kernel of 4d12836: Fashion-MNIST's 10^4-10^6 there, rerun here), the
# phase shares of 9e0757a, both datasets' rules and subnormals flushed, so its models are Table I's.
# 4df151c: the same kernel (0438386 only named its repeated lines), and each tree family's headline point
# timed in pairs, the goals judged on the paired ratio: 6b186c3's repeat reproduced the paired ratios (mosaic
# 5 of 5) but not the grid's (mosaic 10^6 0.52-0.61x), and the mosaic goal's point, a max_codes budget, had
# none. So 10^4-10^6 are timed again here (table2-fmnist, table2-mosaic, then their repeats) before 10^7
TABLE2_COMMIT="${TABLE2_COMMIT:-4df151c}"
GRID_HOME="${GRID_HOME:-$(dirname "$ROOT")/grids}"
PY="$ROOT/.venv/bin/python"
WORKTREE="$GRID_HOME/worktree-$GRID_COMMIT"
mkdir -p "$GRID_HOME"
export HASHBENCH_CACHE="$GRID_HOME/cache"
# the quiet local Dask cluster (protocols/grid.py LOCAL_CLUSTER_CONFIG), also for commits that predate it
export DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED=False DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s \
       DASK_DISTRIBUTED__WORKER__MEMORY__MONITOR_INTERVAL=1s DASK_DISTRIBUTED__ADMIN__SYSTEM_MONITOR__INTERVAL=2s
[ -x "$PY" ] || { echo "no $PY: run 'make setup' first" >&2; exit 2; }
[ -d "$WORKTREE" ] || git -C "$ROOT" worktree add -q --detach "$WORKTREE" "$GRID_COMMIT"

run() {  # run <step> <args of protocols.X ...>
  run_in "$WORKTREE" "$@"
}

worktree_at() {  # worktree_at <commit>: the path of a worktree pinned at it, added where missing
  local tree="$GRID_HOME/worktree-$1"
  [ -d "$tree" ] || git -C "$ROOT" worktree add -q --detach "$tree" "$1"
  echo "$tree"
}

run_in() {  # run_in <worktree> <step> <args of protocols.X ...>
  local tree=$1 step=$2; shift 2
  # past HASHBENCH_START_UNTIL nothing would start: the command is not even launched (a table's
  # rerun-elsewhere pass would otherwise load the dataset once per listed group, ~10 s each, for nothing)
  if [ -n "${HASHBENCH_START_UNTIL:-}" ] && [ "$(date -u +%s)" -ge "$(date -u -d "$HASHBENCH_START_UNTIL" +%s)" ]; then
    echo "$(date -u +%FT%TZ) $step: past HASHBENCH_START_UNTIL ($HASHBENCH_START_UNTIL), not started: $*" \
      | tee -a "$GRID_HOME/steps.log"
    return 0
  fi
  echo "$(date -u +%FT%TZ) $step: $*" | tee -a "$GRID_HOME/steps.log"
  (cd "$tree" && "$PY" -m "$@" --out "${OUT:-$ROOT/results}") >> "$GRID_HOME/$step.log" 2>&1
}

has_rule() {  # has_rule <worktree> <dataset>: the worktree's training-budget rule lists it (its pilot is complete)
  "$PY" -c "import json,sys; sys.exit(0 if sys.argv[1] in json.load(open(sys.argv[2]))['datasets'] else 1)" \
    "$2" "$1/protocols/settings/training_budget.json"
}

step_pilot() { run pilot protocols.pilot --datasets fashion-mnist,fashion-mosaic --workers 2; }

level_loss_of() {  # level_loss_of <worktree> <dataset>: HDHash's level loss its pilot plan chose for the dataset
  "$PY" -c "import json,sys; print(json.load(open(sys.argv[2]))['hdhash_level_loss'][sys.argv[1]])" \
    "$2" "$1/protocols/settings/pilot.json"
}

rerun_elsewhere() {  # rerun_elsewhere <worktree> <tag> <dataset> <commit> <methods> <seeds> [name=value]
  # the runs of Table I's four lengths a grid would skip as stored, made at another commit: again here (--force)
  local tree=$1 tag=$2 dataset=$3 commit=$4 methods=$5 seeds=$6 param=${7:-} method bits stale_seeds
  "$PY" "$ROOT/scripts/records_at_commit.py" --elsewhere "$ROOT/results" "$dataset" "$commit" "$methods" 16,32,48,64 \
      "$seeds" ${param:+"$param"} > "$GRID_HOME/$tag.elsewhere"
  while read -r method bits stale_seeds; do
    run_in "$tree" "$tag" protocols.map --dataset "$dataset" --methods "$method" --bits "$bits" --seeds "$stale_seeds" \
        ${param:+--param "$param"} --workers 2 --threads 1 --force < /dev/null  # the list is the loop's input only
  done < "$GRID_HOME/$tag.elsewhere"
}

table1() {  # table1 <commit> <dataset> <seeds>: Table I and its beyond block at that commit, deep columns under the rule
  local commit=$1 dataset=$2 seeds=$3 tag="table1-$2" tree level_loss
  tree="$(worktree_at "$commit")"
  has_rule "$tree" "$dataset" || { echo "$tag: no training-budget rule for $dataset at $commit yet; skipped"; return 0; }
  level_loss="$(level_loss_of "$tree" "$dataset")"
  # runs a grid would skip as stored but made at another commit (the rule's 32-bit seed-0 copies of the
  # pilot's runs, an earlier grid commit's runs, the shallow columns of every earlier commit) are run
  # again here, once (--force), so the table stays one commit's; a model that identical training code
  # made loads from the model cache. Resumable: what is at the commit is not listed again.
  rerun_elsewhere "$tree" "$tag" "$dataset" "$commit" \
      lsh,itq,sh,sdh,ksh,opq,cnnh,dhn,dnnh,hashnet,hdhash,classifier,csq,dpsh,greedyhash,orthohash "$seeds"
  # the four level-loss candidates' training-seed-0 runs first: HDHash's level loss is chosen on them,
  # and the rest of the table trains only once it is settled: the plan names the loss they choose, the
  # rule has its rate (protocols.pilot --check-level-loss, this checkout's code, says what is owed) and
  # the table's commit names the same loss. Else the step stops here and says why: a changed loss means
  # its pilot runs and a rule at a newer commit, where runs made here would only be run again.
  run_in "$tree" "$tag" protocols.map --dataset "$dataset" --methods dpsh,greedyhash,csq,orthohash --bits 16,32,48,64 \
      --seeds 0 --workers 2 --threads 1
  local owed here
  here="$(level_loss_of "$ROOT" "$dataset")"
  if ! owed="$(cd "$ROOT" && "$PY" -m protocols.pilot --datasets "$dataset" --check-level-loss --out "$ROOT/results" 2>&1)"; then
    :  # what is owed, in its words
  elif [ "$level_loss" != "$here" ]; then
    owed="the table's commit $commit names $level_loss, this checkout $here: move the table's commit"
  else
    owed=""
  fi
  if [ -n "$owed" ]; then
    echo "$(date -u +%FT%TZ) $tag: stopped before the rest of the table, the level loss is not settled: $owed" \
      | tee -a "$GRID_HOME/steps.log"
    return 0
  fi
  run_in "$tree" "$tag" protocols.map --dataset "$dataset" --methods paper,beyond --bits 16,32,48,64 --seeds "$seeds" \
      --workers 2 --threads 1
  rerun_elsewhere "$tree" "$tag" "$dataset" "$commit" hdhash "$seeds" "level_loss=$level_loss"
  run_in "$tree" "$tag" protocols.map --dataset "$dataset" --methods hdhash --param "level_loss=$level_loss" \
      --bits 16,32,48,64 --seeds "$seeds" --workers 2 --threads 1
}

step_table1-fmnist() { table1 "$GRID_COMMIT" fashion-mnist 0,1,2,3,4; }
step_table1-mosaic() {
  [ -n "$MOSAIC_RULE_COMMIT" ] || { echo "table1-fashion-mosaic: no MOSAIC_RULE_COMMIT (the mosaic pilot's rule has not landed); skipped"; return 0; }
  table1 "$MOSAIC_RULE_COMMIT" fashion-mosaic 0,1,2
}
step_unseen() {
  run unseen protocols.map --dataset fashion-mnist --protocol unseen --methods paper,beyond --bits 32,64 \
      --seeds 0,1,2 --workers 2 --threads 1
}
step_authors() {
  for dataset in fashion-mnist fashion-mosaic; do
    run authors protocols.map --dataset "$dataset" --schedule authors --methods dpsh,greedyhash,csq,orthohash \
        --bits 64 --seeds 0,1,2 --workers 2 --threads 1
  done
}

# Table II (issue 30), never in the default list: its timings need the machine to itself, so a session
# names these steps first (before any training step) and the command refuses a loaded machine
# (--require-quiet). Each resumes what an earlier call of the same commit and machine stored (--resume)
# and stops building at HASHBENCH_START_UNTIL, so a size of many hours spans sessions.
TABLE2_TREE="$GRID_HOME/worktree-$TABLE2_COMMIT"
table2_tree() {  # the worktree at TABLE2_COMMIT, added where missing
  [ -d "$TABLE2_TREE" ] || git -C "$ROOT" worktree add -q --detach "$TABLE2_TREE" "$TABLE2_COMMIT"
}
wait_for_quiet() {  # before a timed step: up to 10 min for the one-minute load average to fall below 0.5 a core
  # (it lags the CPU by about a minute: a table2 step straight after training or another table2 step was
  # refused by --require-quiet at load 1.08 on 2 cores, the step before having ended seconds earlier)
  local waited=0
  while awk -v cores="$(nproc)" '{exit !($1 > 0.5 * cores)}' /proc/loadavg && [ "$waited" -lt 600 ]; do
    sleep 15; waited=$((waited + 15))
  done
}
table2() {  # table2 <dataset> <sizes> [more flags]
  table2_tree
  wait_for_quiet
  run_in "$TABLE2_TREE" "table2-$1" protocols.efficiency --dataset "$1" --db-sizes "$2" --require-quiet --resume \
      "${@:3}"
}
# the models Table II encodes (HashNet, HDHash, 64 bits, training seed 0, under the dataset's rule) trained as
# the Table I runs they are, at the table's commit, on both workers: a table2 step that finds them in the
# model cache spends its quiet time timing, not training one model at a time (~15 min each on mosaic). Not
# quiet itself: leave the load a few minutes to fall before a table2 step (--require-quiet refuses it loaded)
step_table2-models() {
  run_in "$(worktree_at "$GRID_COMMIT")" table1-fashion-mnist protocols.map --dataset fashion-mnist \
      --methods hashnet,hdhash --bits 64 --seeds 0 --workers 2 --threads 1
  run_in "$(worktree_at "$MOSAIC_RULE_COMMIT")" table1-fashion-mosaic protocols.map --dataset fashion-mosaic \
      --methods hashnet,hdhash --bits 64 --seeds 0 --workers 2 --threads 1
}
step_table2-fmnist() { table2 fashion-mnist 10000,100000,1000000; }
step_table2-mosaic() { table2 fashion-mosaic 10000,100000,1000000; }
# 10^7 codes, encoded, then the same size generated past 10^6 (the generator's validity check,
# protocols/README.md), then 10^8 generated; each resumes across sessions of one machine kind (a size
# timed on two CPU models is not judged). At 10^7 a setting whose measured warm-up says over 20 min is
# left out with that reason (--max-row-minutes 20, not 45): by --dry-run on Fashion-MNIST that takes the
# rows from ~217 to ~169 min (3.3 h with encoding), what it leaves out being MultiHash's 8-bit tables with
# flips (~34 min a setting; at 10^6 they were 25-79x slower than faiss flat (best) on Fashion-MNIST and
# 66-210x on mosaic), while HNSW M=32 (its build ~18 min) stays. 10^8 keeps 45: IVF's one nlist
# there builds for ~13 min.
step_table2-fmnist-1e7() { table2 fashion-mnist 10000000 --max-row-minutes 20; }
step_table2-mosaic-1e7() { table2 fashion-mosaic 10000000 --max-row-minutes 20; }
step_table2-fmnist-1e7-gen() { table2 fashion-mnist 10000000 --generate-past 1000000 --max-row-minutes 20; }
step_table2-mosaic-1e7-gen() { table2 fashion-mosaic 10000000 --generate-past 1000000 --max-row-minutes 20; }
step_table2-fmnist-1e8() { table2 fashion-mnist 100000000 --generate-past 1000000; }
step_table2-mosaic-1e8() { table2 fashion-mosaic 100000000 --generate-past 1000000; }
# the reproducibility check: the same command again, without --resume (which would keep every row), into
# a scratch folder; then `python -m protocols.efficiency_report --dataset <dataset> --compare-with
# ../grids/table2-repeat` says which headline ratios reproduce within 20%
table2_repeat() {  # table2_repeat <dataset>
  table2_tree
  wait_for_quiet
  OUT="$GRID_HOME/table2-repeat" run_in "$TABLE2_TREE" "table2-repeat-$1" protocols.efficiency --dataset "$1" \
      --db-sizes 10000,100000,1000000 --require-quiet
}
step_table2-fmnist-repeat() { table2_repeat fashion-mnist; }
step_table2-mosaic-repeat() { table2_repeat fashion-mosaic; }

steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(pilot table1-fmnist unseen authors table1-mosaic)
for step in "${steps[@]}"; do
  declare -F "step_$step" >/dev/null || { echo "unknown step $step ($(declare -F | sed -n 's/^declare -f step_//p' | tr '\n' ' '))" >&2; exit 2; }
done
for step in "${steps[@]}"; do "step_$step"; done
echo "$(date -u +%FT%TZ) done: ${steps[*]}" | tee -a "$GRID_HOME/steps.log"
