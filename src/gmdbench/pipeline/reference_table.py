"""gmd-bench's own reference table: run the `reference` matrix into the repository's archive,
one run at a time, and rebuild its report from the archive alone.

The matrix costs many hours on 2 cores (reference/README.md states the measured total), more
than one working session: each run is exported to the archive (``runner/archive.py``) the
moment it is evaluated, and a later session (on another machine, from a fresh clone) skips
every run the archive holds. The dataset this machine builds must be the archived runs' own:
the same content hash, or an equivalent rebuild (the same definition, test labels within
``runner/dataset_match.py``'s tolerance: another CPU gives GFN2-xTB forces other last bits),
whose runs keep the archived dataset's run ids and record the rebuild's hash. Anything else is
refused: numbers of two datasets never share a table.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from gmdbench.config import load_preset
from gmdbench.data.content_hash import definition_hash
from gmdbench.data.generate import dataset_identity
from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError
from gmdbench.files import write_text
from gmdbench.pipeline.matrix import MatrixConfig, load_matrix, matrix_device, plan_matrix
from gmdbench.pipeline.reference_cost import cost_paragraph, matrix_cells
from gmdbench.pipeline.runs import train_and_evaluate
from gmdbench.reference.registry import ReferenceConfig
from gmdbench.report.across_tasks import across_tasks
from gmdbench.report.build import build_report
from gmdbench.report.comparison import (
    PUBLISHED_NAMES,
    comparison_points,
    comparison_table,
    findings,
    published_table,
)
from gmdbench.report.plots import (
    learning_curve_plot,
    published_comparison_chart,
    why_ratios_chart,
)
from gmdbench.report.tables import (
    STATUS_DEFINITION,
    TableRow,
    collect_rows,
    e0_label,
)
from gmdbench.report.why_ratios import (
    PowerLaw,
    StudyRun,
    fit_power_law,
    study_runs,
    why_ratios_section,
)
from gmdbench.runner.archive import (
    archived_records,
    archived_run_ids,
    drop_partial,
    export_run,
    load_archive,
    record_dataset_definition,
    restore_partial,
    save_partial,
)
from gmdbench.runner.dataset_match import (
    ENERGY_TOLERANCE,
    FORCE_TOLERANCE,
    DatasetMatch,
    archived_equivalent,
)
from gmdbench.runner.results import ResultsStore, model_label
from gmdbench.runner.runs import RunConfig
from gmdbench.tasks.spec import load_task

COMPARISON_CHART = "comparison.png"
WHY_RATIOS_CHART = "why_ratios.png"
WHY_RATIOS_PAGE = "why_ratios.md"
WHY_RATIOS_CURVES = "why_ratios_curves.png"
STUDY_FOLDER = "why-ratios"  # the why-ratios study's archive, inside the reference archive
PUBLISHED_TASK = "fragment_duplication"  # the task of REFERENCE_RESULTS.md's table


def run_reference_table(matrix: MatrixConfig, out_dir: Path, archive: Path,
                        on_event: Callable[[str], None] | None = None,
                        device: str | None = None, limit: int | None = None) -> list[Path]:
    """Train, evaluate and archive every run of ``matrix`` the archive lacks, seed by seed;
    ``limit``: stop after that many runs. Returns the archived folders written now."""
    say = on_event or (lambda message: None)
    device = matrix_device(matrix, device, None, None)
    out_dir = Path(out_dir).resolve()
    results = ResultsStore(out_dir / "results.db")
    planned = plan_matrix(matrix, out_dir, on_event=say)
    planned = on_archived_datasets(archive, planned, say)
    done = archived_run_ids(archive)
    remaining = [(run, data) for run, data in planned if run.run_id not in done]
    say(f"{len(planned) - len(remaining)} of {len(planned)} runs already archived in {archive}")
    for local in restore_partial(archive, out_dir / "runs"):
        say(f"resuming {local.name} from the checkpoint a previous session saved")
    written = []
    for run, data in remaining[:limit]:
        run_dirs = train_and_evaluate([(run, data)], out_dir / "runs", results, on_event=say,
                                      device=device)
        written.append(export_run(run_dirs[run.run_id], results, archive))
        drop_partial(archive, run_dirs[run.run_id].name)
        say(f"archived {written[-1]}")
    return written


def save_unfinished(out_dir: Path, archive: Path) -> list[Path]:
    """Save every unfinished run under ``out_dir/runs`` (a checkpoint, no training.json) into
    the archive's ``partial/``, for the next session to resume."""
    runs = Path(out_dir) / "runs"
    done = archived_run_ids(archive)
    saved = []
    for run_dir in sorted(runs.iterdir()) if runs.is_dir() else []:
        if (run_dir / "checkpoint.pt").exists() and not (run_dir / "training.json").exists() \
                and run_dir.name.rsplit("-", 1)[-1] not in done:
            saved.append(save_partial(run_dir, archive))
    return saved


def record_matrix_definitions(archive: Path, results: ResultsStore,
                              matrix: MatrixConfig) -> None:
    """Each archived dataset of the matrix's tasks gets its definition hash in the archive's
    ``datasets/definitions.json`` (from the matrix's built-in task, preset, reference method
    and data seed, and the level of theory its runs recorded), so a user whose rebuilt dataset
    differs only in the last bits of its labels still sees the reference rows
    (``runner/dataset_match.py``). No dataset file is needed."""
    for task in matrix.tasks:
        identity = dataset_identity(load_task(task), load_preset(matrix.preset),
                                    ReferenceConfig(name=matrix.reference), matrix.data_seed)
        for dataset_hash, level in sorted({(run["dataset_hash"], run["level_of_theory"])
                                           for run in results.runs() if run["task"] == task}):
            definition = definition_hash({**identity, "level_of_theory": level})
            if definition is not None:
                record_dataset_definition(archive, dataset_hash, definition)


def on_archived_datasets(archive: Path, planned: list[tuple[RunConfig, Path]],
                         say: Callable[[str], None]) -> list[tuple[RunConfig, Path]]:
    """The planned runs, on the archive's datasets: a task whose dataset here has another
    content hash than its archived runs' is refused unless it is an equivalent rebuild of one
    (``runner/dataset_match.py``); then its runs take that archived dataset's hash, so their
    ids are the ones the archive (and a saved partial run) knows, and record the rebuild's
    hash (``RunConfig.dataset_rebuild_hash``)."""
    archived: dict[str, set[str]] = {}
    for _, record in archived_records(archive):
        archived.setdefault(record["task"], set()).add(record["dataset_hash"])
    matches: dict[tuple[str, str], DatasetMatch] = {}
    placed = []
    for run, data in planned:
        theirs = archived.get(run.task, set())
        if not theirs or run.dataset_hash in theirs:
            placed.append((run, data))
            continue
        key = (run.task, run.dataset_hash)
        if key not in matches:
            match = archived_equivalent(DatasetStore(data, write=False), run.task, archive)
            if match is None:
                raise GmdError(
                    f"reference archive {archive} holds {run.task} runs on dataset(s) "
                    f"{', '.join(h[:16] for h in sorted(theirs))} but this machine built "
                    f"{run.dataset_hash[:16]}, which is not an equivalent rebuild either (its "
                    "definition or its test labels differ): the data generation is not "
                    "reproducing here; compare `gmd data info` of both before adding runs")
            say(f"dataset {data} ({run.dataset_hash[:16]}) is an equivalent rebuild of the "
                f"archived {match.reference_hash[:16]}: {match.describe()}; its runs keep the "
                "archived dataset's run ids")
            matches[key] = match
        placed.append((run.model_copy(update={"dataset_hash": matches[key].reference_hash,
                                              "dataset_rebuild_hash": run.dataset_hash}), data))
    return placed


def rebuild_reference_report(archive: Path, out_dir: Path | None = None,
                             matrix: MatrixConfig | None = None) -> list[Path]:
    """The reference report (``<archive>/report`` by default) and the comparison with the
    published table (``<archive>/README.md``), from the archived files alone. ``matrix``
    (default: the built-in ``reference``) tells which runs are still missing."""
    archive = Path(archive)
    out_dir = Path(out_dir) if out_dir else archive / "report"
    matrix = matrix or load_matrix("reference")
    with tempfile.TemporaryDirectory() as tmp:
        results = load_archive(archive, Path(tmp) / "results.db")
        for defining in (matrix, load_matrix("reference-tasks")):
            record_matrix_definitions(archive, results, defining)
        # the chart first: the HTML page shows every figure of its folder
        chart = published_comparison_chart(
            *comparison_points(_published_task_rows(collect_rows(results)), published_table()),
            out_dir / COMPARISON_CHART)
        study = _why_ratios(archive, results, Path(tmp) / "study.db", out_dir)
        # the HTML page leads with the comparison and its findings (report/html.py ORDER)
        comparison = out_dir / "comparison.md"
        write_text(comparison, "\n".join(comparison_section(
            _published_task_rows(collect_rows(results)), published_table(), level="#")))
        written = build_report(results.path, out_dir, representations=Path(tmp) / "none")
        readme = out_dir.parent / "README.md" if out_dir == archive / "report" else \
            out_dir / "reference_readme.md"
        write_text(readme, reference_readme(results, matrix, archive, out_dir, study))
    return [*written, comparison, readme, *([chart] if chart else [])]


def _why_ratios(archive: Path, results: ResultsStore, study_db: Path, out_dir: Path
                ) -> list[StudyRun]:
    """The why-ratios study's runs (``<archive>/why-ratios``), its figure and its page in the
    report folder (the HTML page shows every markdown file of the folder)."""
    matrix = load_matrix("why-ratios")
    runs = archived_study_runs(archive, study_db)
    published = published_table()
    reference_points = _reference_ratio_points(results)
    chart = why_ratios_chart(
        reference_points, [(r.model, r.factor, r.id_mae, r.ratio) for r in runs],
        [(r.model, [p["id_test_force_mae"] for p in r.curve],
          [p["ood_test_force_mae"] / p["id_test_force_mae"] for p in r.curve])
         for r in runs if r.factor == "central" and r.curve],
        [(name, float(row["force_mae_id"]),
          float(row["force_mae_ood"]) / float(row["force_mae_id"]))
         for name, row in sorted(published.items())],
        out_dir / WHY_RATIOS_CHART,
        (law.intercept, law.slope) if (law := _reference_ratio_law(results)) else None)
    curves: dict[str, list[list[dict]]] = {}
    for run in runs:
        label = f"{run.model} {run.factor}" + (
            f" N={run.train_trajectories}" if run.factor == "data size" else "")
        curves.setdefault(label, []).append(run.curve)
    curves_chart = learning_curve_plot(
        curves, "why-ratios: learning curves (ID and OOD on 200 fixed frames each; analysis "
        "only)", out_dir / WHY_RATIOS_CURVES)
    write_text(out_dir / WHY_RATIOS_PAGE, "\n".join(why_ratios_section(
        runs, published, PUBLISHED_NAMES, _reference_ratio_law(results),
        WHY_RATIOS_CHART if chart else None, matrix.n_runs,
        WHY_RATIOS_CURVES if curves_chart else None, _reference_ratio_groups(results)),
        *filter(None, [rebuild_note(archive / STUDY_FOLDER)])))
    return runs


def rebuild_note(archive: Path) -> str | None:
    """A sentence naming the archived runs that trained on an equivalent rebuild of their
    dataset (``on_archived_datasets``), from each record's ``dataset_content_hash``; None
    where every run trained on the archived dataset itself."""
    records = [record for _, record in archived_records(archive)]
    rebuilt = [trained_on for record in records
               if (trained_on := record["training"].get("dataset_content_hash",
                                                        record["dataset_hash"]))
               != record["dataset_hash"]]
    if not rebuilt:
        return None
    hashes = ", ".join(h[:16] for h in sorted(set(rebuilt)))
    return (f"{len(rebuilt)} of {len(records)} archived runs trained on an equivalent rebuild "
            f"of their dataset made on another machine (content hash {hashes}: the same "
            f"definition, test labels within {ENERGY_TOLERANCE:g} eV / {FORCE_TOLERANCE:g} "
            "eV/A; another CPU gives GFN2-xTB labels other last bits); such a run's "
            "`config.json` and `training.json` record the rebuild's hash.\n")


def archived_study_runs(archive: Path, study_db: Path | None = None) -> list[StudyRun]:
    """The why-ratios study's archived runs (``<archive>/why-ratios/runs``), loaded into a
    throw-away results store (``study_db``, or a temporary one)."""
    study_archive = Path(archive) / STUDY_FOLDER
    if not (study_archive / "runs").is_dir():
        return []
    frames = load_preset(load_matrix("why-ratios").preset).sampler.frames_per_trajectory
    if study_db is not None:
        store = load_archive(study_archive, study_db)
        return study_runs(store.runs(), store.metrics("all"), frames)
    with tempfile.TemporaryDirectory() as tmp:
        store = load_archive(study_archive, Path(tmp) / "study.db")
        return study_runs(store.runs(), store.metrics("all"), frames)


def _reference_ratio_law(results: ResultsStore) -> PowerLaw | None:
    """OOD/ID against ID force MAE over the reference archive's scratch runs, as a power law."""
    points = _reference_ratio_points(results)
    return fit_power_law([x for x, _ in points], [y for _, y in points])


def _published_scratch_runs(results: ResultsStore) -> list[tuple[dict, float, float]]:
    """(run, ID force MAE, OOD force MAE) of every evaluated scratch run of the published task
    in the reference archive: what the ratio cloud and the seed noise are both read from."""
    values = {(m["run_id"], m["split"]): m["value"] for m in results.metrics("all")
              if m["metric"] == "force_mae"}
    return [(run, values[(run["run_id"], "id_test")], values[(run["run_id"], "ood_test")])
            for run in results.runs()
            if run["task"] == PUBLISHED_TASK and run["regime"] == "scratch"
            and (run["run_id"], "id_test") in values and (run["run_id"], "ood_test") in values]


def _reference_ratio_groups(results: ResultsStore) -> dict[str, list[list[float]]]:
    """Per model, the OOD/ID force-MAE ratios of each configuration's seeds among the
    reference archive's trained scratch runs of the published task (a configuration: the
    model's table label and its E0; diverged seeds left out): the seed noise the why-ratios
    verdicts are read against."""
    groups: dict[str, dict[tuple[str, str], list[float]]] = {}
    for run, iid, ood in _published_scratch_runs(results):
        if (run.get("training") or {}).get("status") != "diverged":
            groups.setdefault(run["model"], {}).setdefault(
                (model_label(run), e0_label(run)), []).append(ood / iid)
    return {model: list(found.values()) for model, found in sorted(groups.items())}


def _reference_ratio_points(results: ResultsStore) -> list[tuple[float, float]]:
    """(ID force MAE, OOD/ID) of every trained scratch run of the published task in the
    reference archive: the cloud the study's points are read against."""
    return [(iid, ood / iid) for _, iid, ood in _published_scratch_runs(results)]


def comparison_section(rows: list[TableRow], published: dict[str, dict[str, str]],
                       prefix: str = "", level: str = "##") -> list[str]:
    """Ours beside the published table and the published findings re-tested: the README's
    section, and (``level="#"``, no prefix) the HTML report's first page."""
    chart = comparison_points(rows, published)[0]
    return [
        f"{level} Ours beside the published table (GMD-26 fragment duplication)\n",
        "Published: the GMD-26 authors' table (their data, their training), quoted verbatim "
        "from `REFERENCE_RESULTS.md`; agreement is expected in pattern, not digit for digit. "
        "Ours: mean ± std over seeds; forces eV/A, energies eV (total; Rel. energy MAE: each "
        "molecule's mean error removed). Status: each trained "
        f"seed's, {STATUS_DEFINITION}\n",
        *comparison_table(rows, published),
        "",
        *([f"![Ours beside the published table: OOD/ID force ratio, ID force MAE and OOD force "
           f"MAE per architecture (log scales; ours mean ± std over seeds)]"
           f"({prefix}{COMPARISON_CHART})\n"] if chart else []),
        f"{level}# The published findings, re-tested on our numbers\n",
        "Decided by code (`report/comparison.py`) on each rebuild, from the rows above.\n",
        *findings(rows, published),
        "",
    ]


def missing_runs(cells: list[tuple[int, int, dict | None]], matrix: MatrixConfig) -> list[str]:
    """The matrix's runs the archive lacks (``cells``: :func:`matrix_cells`' answer), as
    ``model regime seed`` labels."""
    missing = []
    for index, seed, run in cells:
        if run is None:
            entry = matrix.models[index]
            options = ", ".join(f"{k}={v}" for k, v in entry.options.items())
            e0 = " E0 fit" if entry.training.reference_energies == "fit" else ""
            missing.append(f"{entry.name}{f' [{options}]' if options else ''}{e0} "
                           f"{entry.regime} s{seed}")
    return missing


def _entries(matrix: MatrixConfig) -> str:
    """A matrix's models in words: ``schnet, deepset_moe [router=spatial, aggregation=sum]``."""
    return ", ".join(entry.name + (" [" + ", ".join(f"{k}={v}" for k, v in entry.options.items())
                                   + "]" if entry.options else "") for entry in matrix.models)


def _published_task_rows(rows: list[TableRow]) -> list[TableRow]:
    """The rows the published table can be set beside: its task's (fragment_duplication)."""
    return [row for row in rows if row.task == PUBLISHED_TASK]


def reference_readme(results: ResultsStore, matrix: MatrixConfig, archive: Path,
                     report_dir: Path, study: list[StudyRun] | None = None) -> str:
    """reference/README.md: status, how to continue, cost, and the published comparison.
    ``study`` is the why-ratios study's runs when the caller has loaded them already; read
    from ``<archive>/why-ratios`` otherwise, so the page never depends on who calls it."""
    if study is None:
        study = archived_study_runs(archive)
    runs = results.runs()
    all_rows = collect_rows(results)  # every task's, read once
    rows = _published_task_rows(all_rows)
    published = published_table()
    others = load_matrix("reference-tasks")
    # each matrix's cells matched once: its missing runs, and the runs the status sentences
    # count; an archived run in no matrix (superseded: the ANI-1x runs with minimum-norm
    # offsets) is named apart
    main_cells, other_cells = list(matrix_cells(runs, matrix)), list(matrix_cells(runs, others))
    missing, others_missing = missing_runs(main_cells, matrix), missing_runs(other_cells, others)
    planned, others_planned = matrix.n_runs, others.n_runs
    main_runs = [run for _, _, run in main_cells if run is not None]
    other_runs = [run for _, _, run in other_cells if run is not None]
    in_matrices = {run["run_id"] for run in main_runs + other_runs}
    superseded = [run for run in runs if run["run_id"] not in in_matrices]
    train_hours = sum(run["timings"]["train_seconds"] for run in main_runs) / 3600
    others_hours = sum(run["timings"]["train_seconds"] for run in other_runs) / 3600
    devices = sorted({run["timings"].get("train_device", "cpu") for run in main_runs})
    hashes = sorted({run["dataset_hash"] for run in runs})
    report = os.path.relpath(report_dir, archive)
    lines = [
        "# gmd-bench reference table: GMD-26 fragment duplication\n",
        "Generated by `gmd reference-table report` from the archived runs in `runs/` alone "
        "(rebuilt, not edited by hand). Matrix: the built-in `reference` "
        f"(`src/gmdbench/pipeline/builtin/reference.yaml`): {matrix.preset} preset, "
        f"{matrix.reference} labels, data seed {matrix.data_seed}, seeds "
        f"{', '.join(map(str, matrix.seeds))}. Dataset hash: "
        f"{', '.join(hashes) or '-'}.\n",
        "## Status\n",
        f"{planned - len(missing)} of {planned} runs archived; their training took "
        f"{train_hours:.1f} h on {', '.join(devices) or '-'}."
        + (" Missing: " + "; ".join(missing) + "." if missing else " Complete.")
        + (f" {len(superseded)} archived run(s) belong to no matrix any more and stay for "
           "comparison, flagged in the tables: "
           + ", ".join(sorted({f"{model_label(run)} {run['regime']} with E0: {e0_label(run)}"
                               for run in superseded})) + "." if superseded else "") + "\n",
        f"The other three tasks (matrix `{others.name}`: {_entries(others)}; "
        f"seed {', '.join(map(str, others.seeds))}): {others_planned - len(others_missing)} of "
        f"{others_planned} runs archived ({others_hours:.1f} h of training); they run after "
        "the main matrix. Their rows are "
        f"below (*The other tasks*) and in `{report}/table.md`.\n",
        "Continue (any machine, a fresh clone): `scripts/reference_table.sh` (background, "
        "commits each archived run; `--stop` saves the unfinished run's checkpoint in "
        "`partial/` for the next session), or `gmd reference-table run [--limit N]`; rebuild this "
        "page and the report: `gmd reference-table report`. Compare your runs: `gmd report "
        "RESULTS` shows these rows beside yours, marked [reference], when your dataset hash "
        "is this one.\n",
        cost_paragraph(runs, matrix, archive) + " Of the "
        f"{sum(bool(run['training'].get('epochs_run')) for run in runs)} trained runs "
        f"archived, {sum(bool(run['training'].get('stopped_early')) for run in runs)} stopped "
        "early; the others ran to their cap.\n",
        *comparison_section(rows, published, f"{report}/"),
        f"## The other tasks (matrix `{others.name}`)\n",
        "The published table has fragment duplication only, so these rows stand beside our "
        f"own {PUBLISHED_TASK} rows of the same models (mean ± std over their seeds). "
        "Decided by code (`report/across_tasks.py`) on each rebuild.\n",
        *across_tasks(all_rows, PUBLISHED_TASK, list(others.tasks)),
        "",
        *why_ratios_section(
            study, published, PUBLISHED_NAMES, _reference_ratio_law(results),
            f"{report}/{WHY_RATIOS_CHART}" if (report_dir / WHY_RATIOS_CHART).exists() else None,
            load_matrix("why-ratios").n_runs,
            f"{report}/{WHY_RATIOS_CURVES}" if (report_dir / WHY_RATIOS_CURVES).exists()
            else None, _reference_ratio_groups(results)),
        *filter(None, [rebuild_note(Path(archive) / STUDY_FOLDER)]),
        f"Full table (RMSE, per-atom energy, EFwT, *E0 only* rows): `{report}/table.md`; "
        f"figures: `{report}/figures.md`; HTML: `{report}/index.html`.\n",
    ]
    if (Path(archive) / "uncertainty" / "README.md").exists():
        lines.append("Uncertainty of every configuration with three seeds (a deep ensemble): "
                     "ranking skill pooled and within molecule, calibration against a "
                     "3-member ensemble's yardstick, recalibration: `uncertainty/README.md` "
                     "(`gmd reference-table uncertainty`, from the committed predictions).\n")
    return "\n".join(lines)
