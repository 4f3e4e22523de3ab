#!/usr/bin/env bash
# Run the reference matrix in the background and commit each archived run as it lands, so a
# later session (a fresh clone on another machine) continues where this one stopped.
#   scripts/reference_table.sh [gmd reference-table run options]   # log: results/reference/run.log
# Stop it before a working session ends: the unfinished run's last epoch checkpoint is saved
# into reference/partial and committed, so the next session resumes it mid-training:
#   scripts/reference_table.sh --stop
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/reference

ARCHIVE_PATHS=(reference/runs reference/datasets reference/partial reference/report
               reference/README.md)

commit_archive() {
  # a newly archived run: rebuild the report and README from the archive, then commit only the
  # archive's paths (other staged work is left alone); retried when another git command holds
  # the index lock
  if [[ -z "$(git status --porcelain -- reference/runs reference/datasets reference/partial)" ]]
  then return 0; fi
  .venv/bin/gmd reference-table report >/dev/null || echo "report rebuild failed"
  local paths=()
  for path in "${ARCHIVE_PATHS[@]}"; do
    # holding a file, or known to git (a folder whose last file went must still be
    # committed); an empty folder is neither, and naming it would fail the commit
    if [[ -n "$(find "$path" -type f -print -quit 2>/dev/null)" ]] ||
       [[ -n "$(git ls-files -- "$path")" ]]; then paths+=("$path"); fi
  done
  for _ in 1 2 3 4 5; do
    git add "${paths[@]}" 2>/dev/null || true
    if git diff --cached --quiet -- "${paths[@]}"; then return 0; fi
    names=$(git diff --cached --name-only -- reference/runs | cut -d/ -f3 | sort -u | tr '\n' ' ')
    message="Reference table: archived ${names}"
    [[ -z "${names// /}" ]] && message="Reference table: unfinished run saved in reference/partial"
    if git commit -q -m "$message" -- "${paths[@]}"
    then return 0; fi
    sleep 7
  done
}

if [[ "${1:-}" == "--stop" ]]; then
  if [[ -f results/reference/run.pid ]]; then
    kill -- -"$(cat results/reference/run.pid)" 2>/dev/null || true
    sleep 3
  fi
  .venv/bin/gmd reference-table save-partial
  commit_archive
  exit 0
fi

if [[ "${1:-}" == "--foreground" ]]; then
  shift
  # the main matrix, then the other three tasks (issue 13, item 6)
  { .venv/bin/gmd reference-table run "$@" &&
    .venv/bin/gmd reference-table run --matrix reference-tasks "$@"; } &
  runner=$!
  trap 'kill "$runner" 2>/dev/null' TERM INT
  while kill -0 "$runner" 2>/dev/null; do sleep 60; commit_archive; done
  wait "$runner" || echo "gmd reference-table run exited with $?"
  commit_archive
  exit 0
fi
setsid "$0" --foreground "$@" >results/reference/run.log 2>&1 < /dev/null &
echo $! > results/reference/run.pid
echo "started (process group $(cat results/reference/run.pid)); log: results/reference/run.log"
