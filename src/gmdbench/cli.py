"""The ``gmd`` command: the only module that knows every layer. Every error, usage errors
included, becomes one line on stderr and exit status 2; options are typed (choices, ranges), so
a bad value is refused before any work starts."""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
import time
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from typer._click.exceptions import NoArgsIsHelpError
from typer.exceptions import TyperException

from gmdbench.active.exploration import ExplorationSettings, TrustWindow
from gmdbench.config import REGIMES, load_preset, one_line
from gmdbench.data.completeness import completeness
from gmdbench.data.estimate import LARGE_BUILD_CALLS, estimate_cost, planned_reference_calls
from gmdbench.data.extxyz import export_extxyz, import_extxyz
from gmdbench.data.generate import build_dataset, check_elements
from gmdbench.data.store import DatasetStore
from gmdbench.distance.manifold import ManifoldSettings
from gmdbench.errors import GmdError
from gmdbench.files import storage_error
from gmdbench.models.base import resolve_device
from gmdbench.models.registry import model_config, model_sizes, registered_models
from gmdbench.pipeline.active_learning import (
    builtin_studies,
    load_study,
    rebuild_active_learning_report,
    run_active_learning,
)
from gmdbench.pipeline.clusters import (
    ClusterSpec,
    load_slurm_config,
    slurm_available,
    slurm_job_script,
)
from gmdbench.pipeline.distances import distance_for_run
from gmdbench.pipeline.exploration import explore_molecules
from gmdbench.pipeline.matrix import builtin_matrices, load_matrix, run_matrix
from gmdbench.pipeline.reference_table import (
    rebuild_reference_report,
    run_reference_table,
    save_unfinished,
)
from gmdbench.pipeline.representations import ProjectionSettings, represent_runs
from gmdbench.pipeline.suites import run_suite
from gmdbench.pipeline.uncertainty import archive_uncertainty, uncertainty_for_runs
from gmdbench.probes.suite import BUILTIN_SUITES, builtin_suite_names, load_suite
from gmdbench.progress import ProgressLines
from gmdbench.reference.registry import ReferenceConfig, resolve_reference
from gmdbench.report.build import build_report
from gmdbench.report.probes import write_probe_report
from gmdbench.runner.archive import REPOSITORY_ARCHIVE, compact_archive, default_archive
from gmdbench.runner.executor import evaluate_run, train_run
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig, TrainFileConfig, load_train_file
from gmdbench.tasks.spec import builtin_task_names, load_task
from gmdbench.tasks.split import fragment_table, novel_fragments

app = typer.Typer(help="gmd-bench: audit how far MLIPs generalise.", no_args_is_help=True,
                  pretty_exceptions_enable=False, add_completion=False)
tasks_app = typer.Typer(help="List and inspect tasks.", no_args_is_help=True)
data_app = typer.Typer(help="Build, inspect and export labelled datasets.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
probe_app = typer.Typer(help="Materials probes: NEB, sliding, equilibrium, MD stability.",
                        no_args_is_help=True)
app.add_typer(tasks_app, name="tasks")
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(probe_app, name="probe")
table_app = typer.Typer(help="gmd-bench's own reference table (the `reference` matrix), kept "
                        "in the repository's reference/ folder.", no_args_is_help=True)
app.add_typer(table_app, name="reference-table")
console = Console()
if not console.is_terminal:  # logs and CI: wide enough for SMILES tables, no wrapping
    console = Console(width=160)


def _say(message: str) -> None:
    """One plain line (progress in a log), flushed at once."""
    console.print(message, markup=False, highlight=False)
err_console = Console(stderr=True, width=100000)  # an error is one line, however long

Regime = StrEnum("Regime", {name.replace("-", "_"): name for name in REGIMES})


class ExportFormat(StrEnum):
    extxyz = "extxyz"


class Descriptor(StrEnum):
    soap = "soap"
    model = "model"


class Executor(StrEnum):
    local = "local"
    dask = "dask"


Seed = Annotated[int, typer.Option(min=0, help="seed of every random step (>= 0)")]
DeviceOption = Annotated[str, typer.Option(
    help="auto (a GPU when there is one), cpu, cuda or cuda:N")]
DeviceOverride = Annotated[str | None, typer.Option(
    "--device", help="auto, cpu, cuda or cuda:N (default: the YAML's device, itself auto)")]


class ClusterKind(StrEnum):
    slurm = "slurm"
@tasks_app.command("list")
def tasks_list() -> None:
    """Built-in tasks with their molecule counts."""

    table = Table("task", "variant", "train molecules", "OOD molecules", "description")
    for name in builtin_task_names():
        task = load_task(name)
        molecules = task.molecules()
        n_train = sum(m.role == "train" for m in molecules)
        table.add_row(name, task.variant, str(n_train), str(len(molecules) - n_train),
                      " ".join(task.description.split()))
    console.print(table)


@tasks_app.command("show")
def tasks_show(task: Annotated[str, typer.Argument(help="built-in name or YAML path")]) -> None:
    """Molecules per role with their fragment counts, and what each OOD molecule adds."""

    spec = load_task(task)
    description = " ".join(spec.description.split())
    console.print(f"[bold]{spec.name}[/bold] ({spec.variant}): {description}")
    rows = fragment_table(spec)
    names = list(spec.fragment_smarts())
    novel = novel_fragments(spec)
    for role, title in (("train", "training molecules (train / val / id_test)"),
                        ("ood", "OOD molecules (ood_test)")):
        table = Table("family", "SMILES", *names, *(["new in OOD"] if role == "ood" else []),
                      title=title)
        for molecule, counts in rows:
            if molecule.role == role:
                extra = ["; ".join(novel[molecule.smiles]) or "-"] if role == "ood" else []
                table.add_row(molecule.family, molecule.smiles,
                              *(str(counts[n]) for n in names), *extra)
        console.print(table)


@data_app.command("build")
def data_build(
    task: Annotated[str, typer.Argument(help="built-in task name or task YAML path")],
    preset: Annotated[str, typer.Option(help="quick | standard | paper | preset YAML")] = "quick",
    reference: Annotated[str | None, typer.Option(
        help="gfn2-xtb (default) | gfn1-xtb | emt | pyscf:<xc>/<basis> | module:factory")] = None,
    workers: Annotated[int, typer.Option(min=1, help="local Dask worker processes")] = 2,
    scheduler: Annotated[str | None, typer.Option(
        help="address of an existing Dask scheduler (instead of a local cluster)")] = None,
    seed: Seed = 0,
    out: Annotated[Path | None, typer.Option(help="dataset file (SQLite)")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask before a large build")] = False,
    allow_failures: Annotated[bool, typer.Option(
        "--allow-failures", help="exit 0 even if some frames failed (they stay recorded)")] = False,
) -> None:
    """Generate (or resume) a labelled, split dataset. Re-run the same command to resume."""

    spec = load_task(task)
    preset_config = load_preset(preset)
    reference_config = (ReferenceConfig(name=reference) if reference
                        else preset_config.reference or ReferenceConfig())
    method = resolve_reference(reference_config)
    check_elements(spec, method)
    out = out or Path("datasets") / f"{spec.name}-{preset_config.name}-seed{seed}.db"
    console.print(f"task {spec.name}, preset {preset_config.name}, reference "
                  f"{method.level_of_theory}, seed {seed} -> {out}")
    if planned_reference_calls(spec, preset_config) > LARGE_BUILD_CALLS:
        cost = estimate_cost(spec, preset_config, method)
        estimate = (f"{cost.molecules} molecules, {cost.trajectories} trajectories, "
                    f"{cost.frames:,} frames, {cost.reference_calls:,} reference calls, "
                    f"{cost.cpu_seconds / 3600:.1f} CPU-hours (~{cost.wall_hours(workers):.1f} "
                    f"h on {workers} workers)")
        console.print(f"estimated cost: {estimate}")
        if not yes:
            if not console.is_terminal or not sys.stdin.isatty():
                raise GmdError(f"preset {preset_config.name} plans a large build ({estimate}): "
                               "pass --yes to start it")
            if not typer.confirm("Start?", default=False):
                raise typer.Exit(1)

    with Progress(TextColumn("labelling"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("failures: {task.fields[failures]}"), TimeRemainingColumn(),
                  console=console, disable=not console.is_terminal) as progress:
        bar = progress.add_task("frames", total=None, failures=0)
        lines = ProgressLines(_say, "labelling", "frames")  # a log: plain lines

        def on_progress(done: int, total: int, failures: int) -> None:
            if console.is_terminal:
                progress.update(bar, completed=done, total=total, failures=failures)
            else:
                lines.update(done, total, failures=failures)

        report = build_dataset(spec, preset_config, reference_config, seed, out,
                               workers=workers, scheduler=scheduler, on_progress=on_progress)
    console.print(f"{report.frames_written} frames labelled now, {report.frames_existing} were "
                  f"already stored, in {report.seconds:.1f} s")
    _print_info(out)
    if report.failures and not allow_failures:
        err_console.print(f"error: {len(report.failures)} frame(s) failed (listed above); the "
                          f"other frames are stored in {out}")
        raise typer.Exit(3)


def _print_info(path: Path) -> None:

    store = DatasetStore(path)
    summary = store.summary()
    console.print(f"dataset {summary['path']}: task {summary['task']}, preset "
                  f"{summary['preset']}, seed {summary['seed']}")
    state = completeness(store)
    if not state.complete:
        console.print(f"incomplete: {state.done} of {state.planned} frames; rerun the same "
                      "`gmd data build` to finish it", markup=False)
    console.print(f"level of theory: {summary['level_of_theory']}")
    split_line = ", ".join(f"{s} {n}" for s, n in sorted(summary["frames_per_split"].items()))
    console.print(f"frames: {summary['frames']} ({split_line})")
    temperatures = summary["kinetic_temperature_per_split"]
    if temperatures:
        measured = ", ".join(f"{split} {t['mean']:.0f} ± {t['std']:.0f} K"
                             for split, t in temperatures.items())
        console.print(f"kinetic temperature (stored momenta, 3N - 3 dof; target "
                      f"{summary['temperature_K']} K): {measured}")
    table = Table("split", "molecule", "frames")
    for key, n in summary["frames_per_molecule"].items():
        split, smiles = key.split(" ", 1)
        table.add_row(split, smiles, str(n))
    console.print(table)
    failures = summary["failures"]
    console.print(f"failures: {len(failures)}")
    for failure in failures:
        console.print(f"  {failure['split']} {failure['smiles']} trajectory "
                      f"{failure['trajectory_id']} frame {failure['frame']}: {failure['reason']}",
                      markup=False)
    console.print(f"hash: {summary['hash']}", highlight=False)


@data_app.command("info")
def data_info(path: Annotated[Path, typer.Argument(help="dataset file")]) -> None:
    """Frames per split and molecule, failures, level of theory and the content hash."""
    _print_info(path)


@data_app.command("export")
def data_export(
    path: Annotated[Path, typer.Argument(help="dataset file")],
    format: Annotated[ExportFormat, typer.Option("--format")] = ExportFormat.extxyz,
    out: Annotated[Path | None, typer.Option(help="output file")] = None,
) -> None:
    """Write the dataset as extended XYZ (ASE's energy/forces keys)."""

    out = out or path.with_suffix(".extxyz")
    if out.exists() and out.resolve() == path.resolve():
        raise GmdError(f"--out {out} is the dataset being exported; give another file")
    n = export_extxyz(DatasetStore(path), out)
    console.print(f"wrote {n} frames to {out}")


@data_app.command("import")
def data_import(
    path: Annotated[Path, typer.Argument(help="extxyz file with energies and forces")],
    out: Annotated[Path, typer.Option(help="new dataset file")],
) -> None:
    """Read an extxyz file into a new dataset store."""
    if out.exists() and out.resolve() == path.resolve():
        raise GmdError(f"--out {out} is the extxyz file being imported; give another file")

    store = import_extxyz(path, out)
    console.print(f"imported {store.count()} frames into {out}")


@app.command("train")
def train_command(
    task: Annotated[str, typer.Option(help="task the dataset was built for")],
    model: Annotated[str, typer.Option(help="registered model name (schnet, painn, mace)")],
    data: Annotated[Path, typer.Option(help="dataset file built by `gmd data build`")],
    seed: Annotated[int, typer.Option(
        min=0, help="seed of model initialisation and shuffling (>= 0)")] = 0,
    config: Annotated[str | None, typer.Option(
        help="`paper` (the GMD-26 authors' training) or a YAML with `model:` options and "
             "`training:` settings")] = None,
    size: Annotated[str | None, typer.Option(
        help="model size from configs/models: small (default where defined) | paper")] = None,
    regime: Annotated[Regime, typer.Option(help="how the model is trained")] = Regime.scratch,
    runs: Annotated[Path, typer.Option(help="folder of run directories")] = Path("runs"),
    device: DeviceOption = "auto",
) -> None:
    """Train a model from scratch on a dataset's train split (val for checkpoint choice)."""
    device = str(resolve_device(device))

    store = DatasetStore(data)
    built_for = store.metadata.get("task", {}).get("name")
    # a task is named by its name or by the YAML it was built from (which holds that name)
    task_name = load_task(task).name if task.endswith((".yaml", ".yml")) else task
    if built_for != task_name:
        raise GmdError(f"dataset {data} was built for task {built_for!r}, not {task_name!r}")
    file_config = TrainFileConfig() if config is None else load_train_file(config)
    if size is None and "small" in model_sizes(model):
        size = "small"
    options = model_config(model, file_config.model, size=size).model_dump(exclude={"name"})
    run = RunConfig(task=task_name, model=model, model_options=options, regime=regime.value,
                    training=file_config.training, seed=seed, dataset_hash=store.content_hash())
    with Progress(TextColumn("training " + model), BarColumn(), MofNCompleteColumn(),
                  TextColumn("val loss {task.fields[val]}"), TimeRemainingColumn(),
                  console=console, disable=not console.is_terminal) as progress:
        bar = progress.add_task("epochs", total=run.training.epochs, val="-")
        lines = ProgressLines(_say, f"training {model}", "epoch", run.training.epochs)

        def on_epoch(epoch: int, record: dict) -> None:
            if console.is_terminal:
                progress.update(bar, completed=epoch + 1, val=f"{record['val_loss']:.4g}")
            else:  # a log file: plain lines with elapsed time and ETA
                lines.update(epoch + 1, val_loss=f"{record['val_loss']:.4g}")

        run_dir = train_run(run, data, runs, on_epoch, device=device)
    console.print(f"run: {run_dir}")


@models_app.command("list")
def models_list() -> None:
    """Every model: library and version, forces, elements covered, pretrained or not."""


    table = Table("model", "library", "version", "forces", "elements", "pretrained", "sizes",
                  "description")
    for name, spec in sorted(registered_models().items()):
        try:
            library_version = version(spec.library)
        except PackageNotFoundError:
            library_version = "not installed"
        conservative = spec.conservative(spec.config_class())
        forces = spec.forces_note or (
            "conservative (-dE/dx)" if conservative else "direct / non-conservative")
        table.add_row(name, spec.library, library_version, forces, spec.elements,
                      "yes (weights in the wheel)" if spec.pretrained else "no",
                      ", ".join(model_sizes(name)) or "-", spec.description)
    console.print(table)


@app.command("evaluate")
def evaluate_command(
    run: Annotated[Path, typer.Argument(help="run directory printed by `gmd train`")],
    results: Annotated[Path, typer.Option(help="results store (SQLite)")] = Path(
        "results/results.db"),
    device: DeviceOption = "auto",
) -> None:
    """Predict id_test and ood_test with the run's best weights; record the metrics."""
    device = str(resolve_device(device))

    existed = results.exists()
    try:
        metrics = evaluate_run(run, ResultsStore(results), device)
    except BaseException:
        if not existed:  # a failed evaluation leaves no empty results store behind
            results.unlink(missing_ok=True)
        raise
    table = Table("split", "force MAE", "cosine", "F mag. MAE", "energy MAE", "E/atom MAE")
    for split, per_molecule in metrics.items():
        m = per_molecule["all"]
        table.add_row(split, f"{m['force_mae']:.4f}", f"{m['force_cosine']:.4f}",
                      f"{m['force_magnitude_mae']:.4f}", f"{m['energy_mae']:.4f}",
                      f"{m['energy_mae_per_atom']:.4f}")
    console.print(table)
    console.print(f"recorded in {results}")


@app.command("distance")
def distance_command(
    run: Annotated[Path, typer.Argument(help="an evaluated run directory")],
    descriptor: Annotated[Descriptor, typer.Option(
        help="soap (dscribe) or model (its node features)")] = Descriptor.soap,
    k: Annotated[int, typer.Option(min=1, help="k-th nearest training environment")] = 1,
    bins: Annotated[int, typer.Option(min=1, help="distance bins (quantiles)")] = 12,
    out: Annotated[Path | None, typer.Option(help="output folder (default RUN/distance)")] = None,
    device: Annotated[str, typer.Option(
        help="where the model computes its features (--descriptor model): auto, cpu, "
             "cuda[:N]")] = "auto",
) -> None:
    """Distance of each test frame from the training manifold, against its force error."""
    device = str(resolve_device(device))

    if not (run / "config.json").exists():
        raise GmdError(f"{run} is not a run directory (no config.json)")
    with console.status("computing descriptors and nearest neighbours"):
        summary = distance_for_run(run, descriptor.value, ManifoldSettings(k=k), bins=bins,
                                   out_dir=out, device=device)
    table = Table("split", "median distance", "p90", "max")
    for split, stats in summary["splits"].items():
        table.add_row(split, f"{stats['max']['median']:.2f}", f"{stats['max']['p90']:.2f}",
                      f"{stats['max']['max']:.2f}")
    console.print(table)
    binned = summary["error_vs_distance"]
    rho = binned["spearman_rho"]
    console.print(f"Spearman(distance, force MAE) = {'n/a' if rho is None else f'{rho:.3f}'}; "
                  f"extrapolation distance = {binned['extrapolation_distance']}")
    console.print(f"written to {out or run / 'distance'}")


@app.command("representations")
def representations_command(
    runs: Annotated[list[Path], typer.Argument(help="evaluated run directories (same dataset)")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/representations"),
    frames: Annotated[int, typer.Option(min=1, help="frames sampled per test split")] = 20,
    seed: Annotated[int, typer.Option(min=0, help="seed of the sampling, PCA and t-SNE")] = 0,
    perplexity: Annotated[float, typer.Option(
        min=1.0, help="t-SNE perplexity (>= 1; capped below the number of atoms)")] = 30.0,
    device: DeviceOption = "auto",
) -> None:
    """Linear CKA between models' node features, PCA and t-SNE with ID-vs-OOD silhouettes."""

    with console.status("node features, CKA, PCA and t-SNE"):
        summary = represent_runs(runs, out, frames,
                                 ProjectionSettings(seed=seed, perplexity=perplexity),
                                 device=str(resolve_device(device)))
    table = Table("model", *[str(k) for k in range(len(summary["models"]))])
    for name, row in zip(summary["models"], summary["cka"], strict=True):
        table.add_row(name, *[f"{v:.2f}" for v in row])
    console.print(table)
    console.print(f"written to {out} (cka.png, projections.png, representations.json)")


@probe_app.command("list")
def probe_list() -> None:
    """The built-in probe suites."""

    table = Table("suite", "name", "reference", "models", "description")
    for name in builtin_suite_names():
        suite, _ = load_suite(name)
        table.add_row(name, suite.name, suite.reference or "stored data",
                      str(len(suite.models)), suite.description)
    console.print(table)


@probe_app.command("run")
def probe_run(
    suite: Annotated[str, typer.Argument(help="a built-in suite (gmd probe list) or a YAML")],
    data: Annotated[Path | None, typer.Option(
        help="folder the suite's relative data files are taken from (default: the YAML's "
             "folder for your own suites)")] = None,
    out: Annotated[Path | None, typer.Option(help="output folder")] = None,
    device: DeviceOverride = None,
) -> None:
    """Train the suite's models (cached), run every probe (resumable), write the report."""
    if device is not None:
        resolve_device(device)

    spec, folder = load_suite(suite)
    root = data if data is not None else (None if folder == BUILTIN_SUITES else folder)
    if data is not None and not data.is_dir():
        raise GmdError(f"data folder {data} does not exist")
    out = out or Path("results") / "probes" / spec.name
    results = run_suite(spec, root, out,
                        on_event=lambda message: console.print(message, markup=False),
                        device=device)
    console.print((out / "report" / "probes.md").read_text(), markup=False, highlight=False)
    console.print(f"results: {results}; report: {out / 'report'}")


@app.command("report")
def report_command(
    results: Annotated[Path, typer.Argument(
        help="results store (SQLite), or the output folder of `gmd probe run`")],
    out: Annotated[Path | None, typer.Option(help="output folder")] = None,
    representations: Annotated[Path | None, typer.Option(
        help="folder of saved representations (default: representations/ beside the store; "
             "`gmd run` saves them, `gmd representations` makes them)")] = None,
    reference_archive: Annotated[Path | None, typer.Option(
        help="gmd-bench's reference table to show beside your runs where the dataset hash "
             "matches (default: the repository's reference/, when it holds runs)")] = None,
    no_reference: Annotated[bool, typer.Option(
        "--no-reference", help="leave the reference table out")] = False,
) -> None:
    """Tables (ID vs OOD, mean +- std over seeds), parity plots, routing, ablation, saved
    representations, and an index.html; or the report of a probe suite's output folder.
    Reads saved files only: no model is loaded."""

    if results.is_dir() and (results / "probe_results.json").exists():  # a probe suite's output

        out = out or results / "report"
        for path in write_probe_report(results / "probe_results.json", out):
            console.print(f"wrote {path}")
        return
    if not results.exists():
        raise GmdError(f"results store {results} does not exist")
    out = out or results.parent / "report"
    reference_archive = reference_archive or default_archive()
    if reference_archive is not None and not (reference_archive / "runs").is_dir():
        raise GmdError(f"--reference-archive {reference_archive} has no runs/ folder")
    for path in build_report(results, out, representations=representations,
                             reference_archive=None if no_reference else reference_archive):
        console.print(f"wrote {path}")
    console.print((out / "table.md").read_text(), markup=False, highlight=False)


@app.command("run")
def run_command(
    name: Annotated[str, typer.Argument(
        help=f"{', '.join(builtin_matrices())}, or the path of a run YAML")],
    out: Annotated[Path | None, typer.Option(help="output folder")] = None,
    workers: Annotated[int, typer.Option(min=1, help="local Dask workers")] = 2,
    executor: Annotated[Executor, typer.Option(
        help="local: runs one after another here; dask: one Dask task per run")] = Executor.local,
    scheduler: Annotated[str | None, typer.Option(
        help="address of an existing Dask scheduler (shared filesystem needed)")] = None,
    device: DeviceOverride = None,
    gpus: Annotated[int | None, typer.Option(
        min=1, help="with --executor dask: one worker per GPU (dask-cuda LocalCUDACluster)")
    ] = None,
    cluster: Annotated[ClusterKind | None, typer.Option(
        help="with --executor dask: workers as SLURM jobs (dask-jobqueue SLURMCluster)")
    ] = None,
    cluster_config: Annotated[Path | None, typer.Option(
        help="YAML of the SLURM jobs' resources (cores, memory, walltime, gpus_per_job, "
             "queue, account, job_directives, job_script_prologue)")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="print the SLURM job script that would be submitted, and stop")
    ] = False,
) -> None:
    """Dataset, training, evaluation and report in one cached, resumable command."""


    matrix = load_matrix(name)
    spec = _cluster_spec(executor, gpus, cluster, cluster_config, scheduler)
    if spec is not None and spec.kind == "slurm" and (dry_run or not slurm_available()):
        console.print(slurm_job_script(spec.slurm), markup=False, highlight=False)
        jobs = min(matrix.n_runs, spec.slurm.max_jobs)
        reason = "--dry-run" if dry_run else "no sbatch on this machine's PATH"
        console.print(f"dry run ({reason}): nothing submitted; {jobs} such job(s) would serve "
                      f"{matrix.n_runs} runs")
        return
    out = out or Path("results") / matrix.name
    started = time.perf_counter()
    results = run_matrix(matrix, out, workers=workers, executor=executor.value,
                         scheduler=scheduler, device=device, cluster=spec,
                         on_event=lambda message: console.print(message, markup=False))
    console.print((out / "report" / "table.md").read_text(), markup=False, highlight=False)
    console.print(f"results: {results}; report: {out / 'report'}; "
                  f"{time.perf_counter() - started:.0f} s")


@app.command("uncertainty")
def uncertainty_command(
    runs: Annotated[list[Path], typer.Argument(
        help="run directories: the seeds of one configuration (a deep ensemble)")],
    out: Annotated[Path | None, typer.Option(
        help="output folder (default: uncertainty/<configuration> beside the runs folder, "
             "where `gmd report` finds it)")] = None,
    bins: Annotated[int, typer.Option(min=2, help="equal-count bins of each curve")] = 8,
    distance: Annotated[bool, typer.Option(
        help="score the SOAP distance from train too (needs the runs' dataset)")] = True,
) -> None:
    """Uncertainty of a configuration: its seeds' ensemble spreads (per frame mean and max over
    atoms) and the SOAP distance from train, each scored against the actual force error on ID
    and OOD test frames, pooled and within molecule beside molecule-only baselines; the
    sigmas' calibration against a calibrated M-member ensemble and recalibrated on held-out ID
    frames; json, csv and plots."""
    for run_dir in runs:
        if not run_dir.is_dir():
            raise GmdError(f"run directory {run_dir} does not exist")
    summary = uncertainty_for_runs(runs, out, bins=bins, distance=distance)
    table = Table("split", *summary["signals"], "ENCE", "within 1σ", "within 2σ")
    for split, data in summary["splits"].items():
        rhos = [data["signals"][name]["spearman"] for name in summary["signals"]]
        table.add_row(split, *("-" if rho is None else f"{rho:.2f}" for rho in rhos),
                      "-" if data["ence"] is None else f"{data['ence']:.2f}",
                      f"{data['coverage']['within_1_sigma']:.2f}",
                      f"{data['coverage']['within_2_sigma']:.2f}")
    console.print("Spearman of each signal with the per-frame force error (pooled):")
    console.print(table)
    ood = summary["splits"]["ood_test"]
    console.print("OOD within molecule (median rho over molecules): " + ", ".join(
        f"{name} {_median(ood['signals'][name]['within_molecule'])}"
        for name in summary["signals"]))
    console.print("molecule-only baselines, OOD pooled rho: " + ", ".join(
        f"{name} {data['spearman']:.2f}" for name, data in ood["baselines"].items()
        if data["spearman"] is not None))
    calibration = summary["calibration"]
    console.print(
        f"calibration: a calibrated {calibration['members']}-member ensemble covers "
        f"{calibration['expected_within_1_sigma']:.2f} / "
        f"{calibration['expected_within_2_sigma']:.2f} within 1/2 sigma; variance scale fitted "
        f"on held-out ID frames {calibration['variance_scale']:.2f}; OOD after it: "
        f"{calibration['splits']['ood_test']['recalibrated_within_1_sigma']:.2f} / "
        f"{calibration['splits']['ood_test']['recalibrated_within_2_sigma']:.2f}")
    console.print(f"best signal for OOD failures: {summary['best_ood_signal']} (pooled), "
                  f"{summary['best_ood_signal_within_molecule']} (within molecule)")


def _median(within: dict) -> str:
    return "-" if within["median"] is None else f"{within['median']:.2f}"


@app.command("active-learn")
def active_learn_command(
    config: Annotated[str, typer.Argument(
        help=f"a built-in study ({', '.join(builtin_studies())}) or an active-learning "
             "YAML")],
    out: Annotated[Path | None, typer.Option(help="output folder")] = None,
    archive: Annotated[Path | None, typer.Option(
        help="a folder to commit (e.g. reference/active-learning/NAME): each finished rule "
             "and seed is written there at once, and those already there are not run again, "
             "so the study continues on a fresh machine")] = None,
    device: DeviceOption = "auto",
) -> None:
    """Active learning on a task's OOD molecules: per acquisition rule and seed, rounds of
    train -> pick -> label -> add; OOD force MAE against added labels, and the labels each
    rule needs to bring OOD error within the target multiple of ID error. Resumable."""
    study = load_study(config)
    out = out or Path("results") / "active-learning" / study.name
    started = time.perf_counter()
    summary = run_active_learning(study, out, device=str(resolve_device(device)),
                                  on_event=lambda message: console.print(message, markup=False),
                                  archive=archive)
    console.print((out / "report" / "active_learning.md").read_text(), markup=False,
                  highlight=False)
    console.print(f"summary: {summary}; report: {out / 'report'}; "
                  f"{time.perf_counter() - started:.0f} s")


@app.command("explore")
def explore_command(
    runs: Annotated[list[Path], typer.Argument(
        help="run directories: the seeds of one configuration (the ensemble that drives MD)")],
    smiles: Annotated[list[str], typer.Option(
        "--smiles", help="a molecule to explore (repeat for several)")],
    low: Annotated[float, typer.Option(
        min=0, help="trust window low (eV/A): frames of smaller model deviation are skipped")],
    high: Annotated[float, typer.Option(
        min=0, help="trust window high (eV/A): the run stops when the deviation reaches it")],
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/exploration"),
    base: Annotated[Path | None, typer.Option(
        help="a dataset: write DATA + the labelled candidates as out/data.db, the next "
             "round's training data")] = None,
    steps: Annotated[int, typer.Option(min=1, help="MD steps at most per molecule")] = 2000,
    temperature: Annotated[float, typer.Option(min=1, help="Langevin temperature (K)")] = 300.0,
    sample_every: Annotated[int, typer.Option(min=1, help="steps between sampled frames")] = 10,
    max_candidates: Annotated[int, typer.Option(
        min=1, help="stop a molecule once this many frames are kept")] = 50,
    reference: Annotated[str, typer.Option(help="labels the kept frames")] = "gfn2-xtb",
    seed: Annotated[int, typer.Option(min=0)] = 0,
    device: DeviceOption = "auto",
) -> None:
    """Model-driven exploration (DP-GEN style): the ensemble's mean force drives MD of each
    molecule; frames whose model deviation (max over atoms) lies in [low, high) are labelled
    by the reference and handed on; a molecule's run stops when the deviation reaches high."""
    for run_dir in runs:
        if not run_dir.is_dir():
            raise GmdError(f"run directory {run_dir} does not exist")
    if base is not None and not base.exists():
        raise GmdError(f"dataset {base} does not exist")
    if high <= low:
        raise GmdError(f"--high {high} must exceed --low {low} (the trust window)")
    summary = explore_molecules(
        runs, smiles, out, TrustWindow(low=low, high=high),
        ExplorationSettings(steps=steps, temperature_K=temperature, sample_every=sample_every,
                            max_candidates=max_candidates),
        reference=reference, seed=seed, base=base, device=str(resolve_device(device)),
        on_event=lambda message: console.print(message, markup=False))
    for molecule in summary["molecules"]:
        console.print(f"{molecule['smiles']}: stopped by {molecule['stopped_by']} after "
                      f"{molecule['steps_run']} steps; {molecule['candidates']} candidate(s)")
    console.print(f"{summary['candidates']} labelled candidate(s): {out / 'candidates.extxyz'}"
                  + (f"; next round's data: {out / 'data.db'}" if base else ""))


@app.command("active-learn-report")
def active_learn_report_command(
    folder: Annotated[Path, typer.Argument(
        help="a finished study's output folder, or a study archive (--archive) still being "
             "filled: an interim report over its seeds with every rule archived")],
) -> None:
    """Rebuild a finished active-learning study's report (curves, labels to target, paired
    comparisons over seeds) from its saved curve and config: no model, no label."""
    summary = rebuild_active_learning_report(folder)
    console.print(f"wrote {summary} and {folder / 'report'}")


ArchiveOption = Annotated[Path, typer.Option(
    "--archive", help="the reference archive folder (default: the repository's reference/)")]


@table_app.command("run")
def reference_table_run(
    archive: ArchiveOption = REPOSITORY_ARCHIVE,
    matrix_name: Annotated[str, typer.Option(
        "--matrix", help="the matrix to archive (default: the built-in `reference`)")
    ] = "reference",
    out: Annotated[Path, typer.Option(help="working folder (datasets, run directories)")
                   ] = Path("results/reference"),
    device: DeviceOverride = None,
    limit: Annotated[int | None, typer.Option(min=1, help="stop after this many runs")] = None,
) -> None:
    """Train, evaluate and archive each run the archive lacks (seed 0 of every model first);
    resumable: a later call, here or on a fresh clone, continues where this one stopped."""
    matrix = load_matrix(matrix_name)
    written = run_reference_table(matrix, out, archive, device=device, limit=limit,
                                  on_event=lambda message: console.print(message, markup=False))
    console.print(f"archived {len(written)} run(s) in {archive}; rebuild the report with "
                  f"`gmd reference-table report --archive {archive}`")


@table_app.command("save-partial")
def reference_table_save_partial(
    archive: ArchiveOption = REPOSITORY_ARCHIVE,
    out: Annotated[Path, typer.Option(help="the working folder `run` trained in")
                   ] = Path("results/reference"),
) -> None:
    """Save each unfinished run (its last epoch checkpoint) into <archive>/partial, so the next
    session, on any machine, resumes it mid-training instead of starting it again."""
    saved = save_unfinished(out, archive)
    for path in saved:
        console.print(f"saved {path}")
    if not saved:
        console.print("no unfinished run")


@table_app.command("report")
def reference_table_report(
    archive: ArchiveOption = REPOSITORY_ARCHIVE,
    out: Annotated[Path | None, typer.Option(help="output folder (default: <archive>/report)")
                   ] = None,
) -> None:
    """Rebuild the reference report from the archived files alone: no training, no weights."""
    for path in rebuild_reference_report(archive, out):
        console.print(f"wrote {path}")


@table_app.command("compact")
def reference_table_compact(archive: ArchiveOption = REPOSITORY_ARCHIVE) -> None:
    """Rewrite runs archived in the old full form (float64 predictions repeating their labels)
    in the compact form new runs are archived in: float32 forces, each set of test labels
    once in <archive>/datasets; metrics.json recomputed from the compact values. Prints each
    metric that moved and by how much; rebuild the report afterwards."""
    changes = compact_archive(archive)
    for run, changed in changes.items():
        moved = ", ".join(f"{name} {change:.1e}" for name, change in sorted(changed.items()))
        console.print(f"{run}: " + (f"largest relative change {moved}" if moved
                                    else "no metric changed"), markup=False)
    console.print(f"rewrote {len(changes)} run(s); rebuild the report with "
                  f"`gmd reference-table report --archive {archive}`")


@table_app.command("uncertainty")
def reference_table_uncertainty(
    archive: ArchiveOption = REPOSITORY_ARCHIVE,
    out: Annotated[Path | None, typer.Option(
        help="output folder (default: <archive>/uncertainty)")] = None,
) -> None:
    """Uncertainty of every archived configuration with two or more seeds, from the committed
    predictions alone: ranking skill pooled and within molecule, calibration and
    recalibration; README.md beside them."""
    for label, outcome in archive_uncertainty(archive, out or Path(archive) / "uncertainty"
                                              ).items():
        console.print(f"{label}: {outcome}")


def _cluster_spec(executor: Executor, gpus: int | None, cluster: ClusterKind | None,
                  cluster_config: Path | None, scheduler: str | None) -> ClusterSpec | None:
    """The cluster asked for on the command line, checked for consistency before any work."""
    if gpus is None and cluster is None:
        if cluster_config is not None:
            raise GmdError("--cluster-config needs --cluster slurm")
        return None
    if executor != Executor.dask:
        raise GmdError("--gpus and --cluster need --executor dask")
    if gpus is not None and cluster is not None:
        raise GmdError("give --gpus (one machine's GPUs) or --cluster slurm, not both")
    if scheduler is not None:
        raise GmdError("--scheduler names an existing cluster: drop --gpus / --cluster")
    if gpus is not None:
        return ClusterSpec(kind="gpus", gpus=gpus)
    if cluster_config is None:
        raise GmdError("--cluster slurm needs --cluster-config FILE (cores, memory, walltime, "
                       "...)")
    return ClusterSpec(kind="slurm", slurm=load_slurm_config(cluster_config))


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"error: {one_line(message)}", markup=False, highlight=False)
    sys.exit(code)


def _with_given_value(message: str, argv: list[str]) -> str:
    """Typer names the option of a bad value but not the value: add what was typed."""
    match = re.search(r"Invalid value for '(--[\w-]+)", message)
    if match and match.group(1) in argv:
        index = argv.index(match.group(1))
        if index + 1 < len(argv):
            return f"{message} (got {argv[index + 1]!r})"
    return message


def main() -> None:
    """Entry point: every error becomes one line on stderr and exit status 2 (1 when the user
    aborts at a prompt, 3 for a build with failed frames)."""
    handler = logging.StreamHandler()
    handler.setLevel(logging.WARNING)  # Dask sets its loggers to INFO; cluster chatter is not news
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    try:
        code = app(standalone_mode=False)
    except GmdError as error:
        _fail(str(error))
    except NoArgsIsHelpError as error:  # `gmd` or `gmd data` alone: the help is the answer
        error.show()
        sys.exit(2)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(1)
    except TyperException as error:  # usage errors: missing or unknown option, bad value
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        _fail(_with_given_value(message, sys.argv[1:]))
    except OSError as error:  # read-only folder, full disk, permissions
        _fail(str(storage_error(error, Path(error.filename or "?"))))
    except sqlite3.OperationalError as error:
        _fail(f"a SQLite store could not be written or read: {error}")
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
