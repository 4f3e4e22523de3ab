#!/usr/bin/env bash
# Run the reference matrix in the background and commit each archived run as it lands, so a
# later session (a fresh clone on another machine) continues where this one stopped.
#   scripts/reference_table.sh [gmd reference-table run options]   # log: results/reference/run.log
# Stop it (the whole process group; training resumes from its last epoch checkpoint):
#   kill -- -$(cat results/reference/run.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p results/reference

ARCHIVE_PATHS=(reference/runs reference/datasets reference/report reference/README.md)

commit_archive() {
  # a newly archived run: rebuild the report and README from the archive, then commit only the
  # archive's paths (other staged work is left alone); retried when another git command holds
  # the index lock
  if [[ -z "$(git status --porcelain -- reference/runs reference/datasets)" ]]; then return 0; fi
  .venv/bin/gmd reference-table report >/dev/null || echo "report rebuild failed"
  local paths=()
  for path in "${ARCHIVE_PATHS[@]}"; do [[ -e "$path" ]] && paths+=("$path"); done
  for _ in 1 2 3 4 5; do
    git add "${paths[@]}" 2>/dev/null || true
    if git diff --cached --quiet -- "${paths[@]}"; then return 0; fi
    names=$(git diff --cached --name-only -- reference/runs | cut -d/ -f3 | sort -u | tr '\n' ' ')
    if git commit -q -m "Reference table: archived ${names}" -- "${paths[@]}"
    then return 0; fi
    sleep 7
  done
}

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
