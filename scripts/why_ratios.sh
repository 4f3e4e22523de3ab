#!/usr/bin/env bash
# The why-ratios study (issue 25) in the background, committed run by run under
# reference/why-ratios (resumable from a fresh clone): scripts/why_ratios.sh [--stop]
# Estimate first: python bench/run_cost.py --matrix why-ratios
set -euo pipefail
export MATRICES=why-ratios ARCHIVE=reference/why-ratios WORK=results/why-ratios
exec "$(dirname "$0")/reference_table.sh" "$@"
