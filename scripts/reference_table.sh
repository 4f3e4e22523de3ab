#!/usr/bin/env bash
# Run an archived matrix in the background and commit each archived run as it lands, so a
# later session (a fresh clone on another machine) continues where this one stopped.
#   scripts/reference_table.sh [gmd reference-table run options]   # log: $WORK/run.log
# Stop it before a working session ends: the unfinished run's last epoch checkpoint is saved
# into $ARCHIVE/partial and committed, so the next session resumes it mid-training:
#   scripts/reference_table.sh --stop
# Which matrices, archive and working folder (defaults: the reference table, issue 13):
#   MATRICES="reference reference-tasks" ARCHIVE=reference WORK=results/reference
# scripts/why_ratios.sh sets them for the why-ratios study (issue 25).
set -euo pipefail
cd "$(dirname "$0")/.."
MATRICES=${MATRICES:-"reference reference-tasks"}
ARCHIVE=${ARCHIVE:-reference}
WORK=${WORK:-results/reference}
mkdir -p "$WORK"

# the archive's own paths, and the reference report and README every archive feeds
ARCHIVE_PATHS=("$ARCHIVE/runs" "$ARCHIVE/datasets" "$ARCHIVE/partial" reference/report
               reference/README.md)
[[ "$ARCHIVE" != reference ]] && ARCHIVE_PATHS+=("$ARCHIVE/README.md" "$ARCHIVE/cost_measured.txt")

commit_archive() {
  # a newly archived run: rebuild the report and README from the archive, then commit only the
  # archive's paths (other staged work is left alone); retried when another git command holds
  # the index lock
  if [[ -z "$(git status --porcelain -- "$ARCHIVE/runs" "$ARCHIVE/datasets" "$ARCHIVE/partial")" ]]
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
    names=$(git diff --cached --name-only -- "$ARCHIVE/runs" | sed "s|^$ARCHIVE/runs/||" |
            cut -d/ -f1 | sort -u | tr '\n' ' ')
    message="Reference table: archived ${names} in $ARCHIVE"
    [[ -z "${names// /}" ]] && message="Reference table: unfinished run saved in $ARCHIVE/partial"
    if git commit -q -m "$message" -- "${paths[@]}"
    then return 0; fi
    sleep 7
  done
}

if [[ "${1:-}" == "--stop" ]]; then
  if [[ -f "$WORK/run.pid" ]]; then
    kill -- -"$(cat "$WORK/run.pid")" 2>/dev/null || true
    sleep 3
  fi
  .venv/bin/gmd reference-table save-partial --archive "$ARCHIVE" --out "$WORK"
  commit_archive
  exit 0
fi

if [[ "${1:-}" == "--foreground" ]]; then
  shift
  # each matrix in turn (the reference table: the main matrix, then the other three tasks)
  { for matrix in $MATRICES; do
      .venv/bin/gmd reference-table run --matrix "$matrix" --archive "$ARCHIVE" --out "$WORK" \
        "$@" || exit $?
    done; } &
  runner=$!
  trap 'kill "$runner" 2>/dev/null' TERM INT
  while kill -0 "$runner" 2>/dev/null; do sleep 60; commit_archive; done
  wait "$runner" || echo "gmd reference-table run exited with $?"
  commit_archive
  exit 0
fi
setsid "$0" --foreground "$@" >"$WORK/run.log" 2>&1 < /dev/null &
echo $! > "$WORK/run.pid"
echo "started (process group $(cat "$WORK/run.pid")); log: $WORK/run.log"
