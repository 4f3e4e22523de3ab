#!/usr/bin/env bash
# An active-learning study in the background, committed unit by unit (one rule and seed) under
# reference/active-learning/NAME, so a later session (a fresh clone on another machine)
# continues where this one stopped:
#   scripts/active_learning.sh [NAME]          # default NAME: fragment-duplication-powered
#   scripts/active_learning.sh [NAME] --stop   # before a working session ends
#   scripts/active_learning.sh [NAME] --stop-after-unit   # waits for the unit in flight to be
#                                                          # archived, then stops (nothing lost)
# log: results/active-learning/NAME/run.log. A unit still running when stopped is lost (its
# rounds are trained again next time); finished units are never run twice.
# Estimate first: python bench/run_cost.py --study NAME
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=fragment-duplication-powered
if [[ $# -gt 0 && "$1" != --* ]]; then NAME=$1; shift; fi
ARCHIVE=reference/active-learning/$NAME
WORK=results/active-learning/$NAME
mkdir -p "$WORK"

commit_units() {
  # newly archived units (and, at the end, the study's curve and report): commit only the
  # archive (other staged work is left alone); retried when another git command holds the
  # index lock
  if [[ -z "$(git status --porcelain -- "$ARCHIVE")" ]]; then return 0; fi
  # an interim report over the seeds with every rule archived (none yet: nothing to write);
  # the finished study's own report replaces it at the end
  if [[ ! -f "$ARCHIVE/curve.json" ]]; then
    .venv/bin/gmd active-learn-report "$ARCHIVE" >/dev/null 2>&1 || true
  fi
  for _ in 1 2 3 4 5; do
    git add "$ARCHIVE" 2>/dev/null || true
    if git diff --cached --quiet -- "$ARCHIVE"; then return 0; fi
    names=$(git diff --cached --name-only -- "$ARCHIVE/units" | xargs -rn1 basename |
            sed 's/\.json$//' | tr '\n' ' ')
    if [[ -n "${names// /}" ]]; then message="archived ${names% }"
    elif ! git diff --cached --quiet -- "$ARCHIVE/curve.json"; then
      message="its finished curve and report"
    elif ! git diff --cached --quiet -- "$ARCHIVE/study.json"; then message="its config"
    else message="its report rebuilt"; fi
    message="Active-learning study $NAME: $message"
    if git commit -q -m "$message" -- "$ARCHIVE"; then return 0; fi
    sleep 7
  done
}

if [[ "${1:-}" == "--stop-after-unit" ]]; then
  # the log names each unit as it is archived; wait for one more than now, then stop
  archived() { grep -c " archived -> " "$WORK/run.log" 2>/dev/null || true; }
  before=$(archived)
  echo "waiting for the unit in flight to be archived ($before so far in this run's log)"
  while [[ -f "$WORK/run.pid" ]] && kill -0 "$(cat "$WORK/run.pid")" 2>/dev/null &&
        [[ "$(archived)" -le "$before" ]]; do
    sleep 10
  done
  set -- --stop
fi

if [[ "${1:-}" == "--stop" ]]; then
  if [[ -f "$WORK/run.pid" ]]; then
    kill -- -"$(cat "$WORK/run.pid")" 2>/dev/null || true
    sleep 3
  fi
  commit_units
  exit 0
fi

if [[ "${1:-}" == "--foreground" ]]; then
  shift
  .venv/bin/gmd active-learn "$NAME" --out "$WORK" --archive "$ARCHIVE" "$@" &
  runner=$!
  trap 'kill "$runner" 2>/dev/null' TERM INT
  while kill -0 "$runner" 2>/dev/null; do sleep 60; commit_units; done
  wait "$runner" || echo "gmd active-learn exited with $?"
  commit_units
  exit 0
fi
setsid "$0" "$NAME" --foreground "$@" >"$WORK/run.log" 2>&1 < /dev/null &
echo $! > "$WORK/run.pid"
echo "started (process group $(cat "$WORK/run.pid")); log: $WORK/run.log"
