"""The reference-table archive: export, reload, rebuild the report from the archive alone."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch

from gmdbench.evaluation.evaluate import Predictions
from gmdbench.evaluation.metrics import force_mae
from gmdbench.pipeline.reference_table import rebuild_reference_report
from gmdbench.report.build import build_report
from gmdbench.runner import archive as archive_module
from gmdbench.runner.archive import (
    ArchiveError,
    archived_run_ids,
    compact_archive,
    export_run,
    load_archive,
)


@pytest.fixture(scope="module")
def archive(tmp_path_factory, trained_runs):
    results, run_dirs = trained_runs
    folder = tmp_path_factory.mktemp("archive")
    for run_dir in run_dirs:
        export_run(run_dir, results, folder)
    return folder


def test_archive_holds_every_run_and_reloads_the_same_metrics(archive, trained_runs, tmp_path):
    results, run_dirs = trained_runs
    assert archived_run_ids(archive) == {run["run_id"] for run in results.runs()}
    reloaded = load_archive(archive, tmp_path / "r.db")
    key = ("run_id", "split", "molecule", "metric")
    original = {tuple(r[k] for k in key): r["value"] for r in results.metrics("*")}
    again = {tuple(r[k] for k in key): r["value"] for r in reloaded.metrics("*")}
    # archived forces are float32: the same metrics to float32's precision, recomputed
    assert again.keys() == original.keys()
    for name, value in original.items():
        assert again[name] == pytest.approx(value, rel=1e-5, abs=1e-9), name
    for run in reloaded.runs():
        assert run["run_dir"].startswith(str(archive))
        assert (archive / "runs" / run_dirs[0].name).exists()


def test_archived_files_are_the_small_ones_and_the_log_has_the_val_curve(archive, trained_runs):
    _, run_dirs = trained_runs
    folder = archive / "runs" / run_dirs[0].name
    names = {path.name for path in folder.iterdir()}
    assert {"record.json", "config.json", "training.json", "training_log.csv", "metrics.json",
            "predictions_id_test.npz", "predictions_ood_test.npz", "best.pt"} <= names
    assert "checkpoint.pt" not in names
    log = folder / "training_log.csv"
    header, *rows = log.read_text().splitlines()
    assert "val_force_mae" in header.split(",")
    assert len(rows) == json.loads((folder / "training.json").read_text())["epochs_run"]
    assert json.loads((folder / "config.json").read_text())["dataset_path"].startswith("../..")


def test_archived_predictions_are_compact_and_share_their_labels(archive, trained_runs):
    """Labels are stored once per set of frames (the three runs scored the same frames: one
    file per split), forces in float32, energies in float64; loading gives the run's
    predictions."""
    _, run_dirs = trained_runs
    assert len(list((archive / "datasets").glob("labels-*.npz"))) == 2
    for run_dir in run_dirs:
        for split in ("id_test", "ood_test"):
            original = Predictions.load(run_dir / f"predictions_{split}.npz")
            archived_file = archive / "runs" / run_dir.name / f"predictions_{split}.npz"
            archived = Predictions.load(archived_file)
            assert archived_file.stat().st_size < (run_dir / f"predictions_{split}.npz"
                                                   ).stat().st_size
            assert np.array_equal(archived.energy, original.energy)
            assert np.array_equal(archived.forces_reference, original.forces_reference)
            # stored as float32, which loses nothing of a float32 model's forces
            with np.load(archived_file) as raw:
                assert raw["forces"].dtype == np.float32 and "forces_reference" not in raw
            assert np.array_equal(archived.forces, original.forces.astype(np.float32))


@pytest.mark.parametrize("margin, kept", [(-1, False), (0, False), (1, True)])
def test_weights_at_or_over_the_limit_stay_out(trained_runs, tmp_path, monkeypatch, margin,
                                               kept):
    """The limit is exclusive: weights exactly at it stay out, one byte under it are copied."""
    results, run_dirs = trained_runs
    weights = run_dirs[0] / "best.pt"
    monkeypatch.setattr(archive_module, "WEIGHTS_LIMIT", weights.stat().st_size + margin)
    folder = export_run(run_dirs[0], results, tmp_path)
    assert (folder / "best.pt").exists() == kept
    if kept:
        assert (folder / "best.pt").read_bytes() == weights.read_bytes()
    assert (folder / "predictions_ood_test.npz").exists()


def test_metrics_recomputed_from_archived_predictions(archive, trained_runs):
    _, run_dirs = trained_runs
    for run_dir in run_dirs:
        folder = archive / "runs" / run_dir.name
        metrics = json.loads((folder / "metrics.json").read_text())
        for split in ("id_test", "ood_test"):
            predictions = Predictions.load(folder / f"predictions_{split}.npz")
            recomputed = force_mae(predictions.forces, predictions.forces_reference)
            assert recomputed == pytest.approx(metrics[split]["all"]["force_mae"], rel=1e-9)


def test_report_rebuilt_from_the_archive_is_reproducible_and_equals_the_original(
        archive, trained_runs, tmp_path):
    results, _ = trained_runs
    first = rebuild_reference_report(archive, tmp_path / "first")
    second = rebuild_reference_report(archive, tmp_path / "second")
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        if a.name == "reference_readme.md":  # names its report folder
            assert a.read_text().replace("first", "second") == b.read_text()
        else:
            assert a.read_bytes() == b.read_bytes(), a.name
    original = build_report(results.path, tmp_path / "original",
                            representations=tmp_path / "none")
    assert (tmp_path / "original" / "table.md").read_text() == \
        (tmp_path / "first" / "table.md").read_text()
    # + comparison.md and the README; no chart beside the published table (another task)
    assert len(original) == len(first) - 2
    assert not (tmp_path / "first" / "comparison.png").exists()


def test_a_torn_export_is_invisible_and_a_broken_run_is_named(archive, trained_runs, tmp_path):
    results, run_dirs = trained_runs
    copy = tmp_path / "copy"
    for run_dir in run_dirs[:1]:
        export_run(run_dir, results, copy)
    (copy / "runs" / ".half.tmp").mkdir()
    assert len(archived_run_ids(copy)) == 1
    broken = copy / "runs" / run_dirs[0].name / "metrics.json"
    broken.write_text("{not json")
    with pytest.raises(ArchiveError, match="cannot be read"):
        load_archive(copy, tmp_path / "r.db")
    with pytest.raises(ArchiveError, match="no runs/ folder"):
        load_archive(tmp_path / "nowhere", tmp_path / "r2.db")


def test_export_refuses_a_run_that_was_not_evaluated(trained_runs, tmp_path):
    results, _ = trained_runs
    with pytest.raises(ArchiveError, match="not in results store"):
        export_run(tmp_path / "some-run", results, tmp_path / "archive")
    assert not (tmp_path / "archive").exists()


def test_user_report_shows_reference_rows_on_the_same_dataset(archive, trained_runs, tmp_path):
    results, _ = trained_runs
    build_report(results.path, tmp_path / "report", representations=tmp_path / "none",
                 reference_archive=archive)
    table = (tmp_path / "report" / "table.md").read_text()
    lines = table.splitlines()
    own = [line for line in lines if line.startswith(("| schnet |", "| mace |"))]
    reference = [line for line in lines if line.startswith(("| schnet [reference] |",
                                                            "| mace [reference] |"))]
    assert len(own) == len(reference) == 2
    # the same runs archived: the same numbers, in the reference's rows
    assert [line.split("|", 2)[2] for line in own] == \
        [line.split("|", 2)[2] for line in reference]
    assert "not shown" not in table
    csv_header = (tmp_path / "report" / "table.csv").read_text().splitlines()[0]
    assert "reference" in csv_header.split(",")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "sort by this column" in page and "ratio_tiny_alkanes.png" in page
    assert (tmp_path / "report" / "ratio_tiny_alkanes.png").stat().st_size > 0
    assert (tmp_path / "report" / "convergence_tiny_alkanes.png").stat().st_size > 0
    # the runs' learning curves (ID, OOD, ratio against epoch), shown and captioned
    assert (tmp_path / "report" / "learning_curves_tiny_alkanes.png").stat().st_size > 0
    assert "learning_curves_tiny_alkanes.png" in page and "never read by training" in page


def test_user_report_says_why_reference_rows_are_missing(archive, trained_runs, tmp_path):
    results, _ = trained_runs
    other = tmp_path / "other"
    shutil.copytree(archive, other)
    for record_path in other.glob("runs/*/record.json"):
        record = json.loads(record_path.read_text())
        record["dataset_hash"] = "f" * 64
        record_path.write_text(json.dumps(record))
    build_report(results.path, tmp_path / "report", representations=tmp_path / "none",
                 reference_archive=other)
    table = (tmp_path / "report" / "table.md").read_text()
    assert "[reference]" not in table.replace("[reference]: a row", "")
    assert "the reference table is not shown: its dataset (ffffffffffff) is not yours" in table


@pytest.mark.parametrize("factor, rebuild", [(1 + 1e-12, True), (1 + 1e-3, False)])
def test_runs_are_added_to_an_archive_only_on_its_dataset_or_an_equivalent_rebuild(
        archive, trained_runs, tiny_dataset, tmp_path, factor, rebuild):
    """The archive's own dataset and a task it has no runs of pass unchanged; a rebuild whose
    labels differ in their last bits (another CPU) keeps the archived run ids and records its
    own hash; labels that really differ are refused."""
    from gmdbench.errors import GmdError
    from gmdbench.pipeline.reference_table import on_archived_datasets
    from gmdbench.runner.runs import RunConfig

    results, _ = trained_runs
    run = RunConfig.model_validate(results.runs()[0]["config"])
    assert run.run_id in archived_run_ids(archive)
    elsewhere = run.model_copy(update={"task": "another_task", "dataset_hash": "0" * 64})
    said = []
    assert on_archived_datasets(archive, [(run, tiny_dataset), (elsewhere, tmp_path)],
                                said.append) == [(run, tiny_dataset), (elsewhere, tmp_path)]
    assert said == []
    copy = _relabelled_copy(tiny_dataset, tmp_path / "rebuilt.db", factor)
    planned = [(run.model_copy(update={"dataset_hash": copy.content_hash()}), copy.path)]
    if not rebuild:
        with pytest.raises(GmdError, match="not an equivalent rebuild either"):
            on_archived_datasets(archive, planned, said.append)
        return
    [(placed, data)] = on_archived_datasets(archive, planned, said.append)
    assert data == copy.path and placed.run_id == run.run_id
    assert (placed.dataset_hash, placed.dataset_rebuild_hash) == (run.dataset_hash,
                                                                  copy.content_hash())
    assert len(said) == 1 and f"equivalent rebuild of the archived {run.dataset_hash[:16]}" \
        in said[0]


def test_a_run_on_an_equivalent_rebuild_trains_on_it_and_records_its_hash(tiny_dataset,
                                                                           tmp_path):
    """The rebuild's hash is in config.json (read back by evaluation) and training.json, not
    in the run's id; a dataset that is neither the run's nor its rebuild is refused."""
    from gmdbench.config import TrainConfig
    from gmdbench.errors import DatasetMismatchError
    from gmdbench.runner.executor import evaluate_run, train_run
    from gmdbench.runner.results import ResultsStore
    from gmdbench.runner.runs import RunConfig, read_run_config

    copy = _relabelled_copy(tiny_dataset, tmp_path / "rebuilt.db", 1 + 1e-12)
    run = RunConfig(task="tiny_alkanes", model="schnet",
                    model_options={"hidden_channels": 8, "num_filters": 8},
                    training=TrainConfig(epochs=1, batch_size=4), dataset_hash="e" * 64)
    with pytest.raises(DatasetMismatchError, match="has hash"):
        train_run(run, copy.path, tmp_path / "runs")
    on_rebuild = run.model_copy(update={"dataset_rebuild_hash": copy.content_hash()})
    assert on_rebuild.run_id == run.run_id and on_rebuild.resolved() == run.resolved()
    run_dir = train_run(on_rebuild, copy.path, tmp_path / "runs")
    stored, _ = read_run_config(run_dir)
    assert (stored.run_id, stored.dataset_rebuild_hash) == (run.run_id, copy.content_hash())
    summary = json.loads((run_dir / "training.json").read_text())
    assert summary["dataset_content_hash"] == copy.content_hash()
    results = ResultsStore(tmp_path / "results.db")
    evaluate_run(run_dir, results)  # reads the rebuild's hash back from config.json
    [record] = results.runs()
    assert record["dataset_hash"] == "e" * 64
    assert record["training"]["dataset_content_hash"] == copy.content_hash()


def test_the_readme_names_runs_trained_on_an_equivalent_rebuild(archive, tmp_path):
    """None while every run trained on the archived dataset itself (runs archived before the
    hash was recorded count as such); else how many, and the rebuild's hash."""
    from gmdbench.pipeline.reference_table import rebuild_note

    copy = tmp_path / "copy"
    shutil.copytree(archive, copy)
    records = sorted(copy.glob("runs/*/record.json"))
    first = json.loads(records[0].read_text())
    first["training"]["dataset_content_hash"] = first["dataset_hash"]
    records[0].write_text(json.dumps(first))
    assert rebuild_note(copy) is None
    first["training"]["dataset_content_hash"] = "ab" * 32
    records[0].write_text(json.dumps(first))
    note = rebuild_note(copy)
    assert note is not None
    assert note.startswith(f"1 of {len(records)} archived runs trained on an equivalent rebuild")
    assert "content hash abababababababab:" in note and "within 1e-06 eV / 1e-06 eV/A" in note


def test_an_unfinished_run_is_saved_and_resumed_by_the_next_session(trained_runs, tmp_path):
    from gmdbench.pipeline.reference_table import save_unfinished
    from gmdbench.runner.archive import drop_partial, restore_partial

    _, run_dirs = trained_runs
    working = tmp_path / "work" / "runs"
    unfinished = working / run_dirs[0].name
    shutil.copytree(run_dirs[0], unfinished)
    (unfinished / "training.json").unlink()  # killed before its last epoch
    shutil.copytree(run_dirs[1], working / run_dirs[1].name)  # a finished one: not saved
    archive = tmp_path / "archive"
    saved = save_unfinished(tmp_path / "work", archive)
    assert [path.name for path in saved] == [unfinished.name]
    assert (saved[0] / "checkpoint.pt").exists() and (saved[0] / "config.json").exists()
    # a fresh machine: restored, and training resumes from the saved epoch
    fresh = tmp_path / "fresh" / "runs"
    assert [path.name for path in restore_partial(archive, fresh)] == [unfinished.name]
    assert (fresh / unfinished.name / "checkpoint.pt").read_bytes() == \
        (unfinished / "checkpoint.pt").read_bytes()
    assert restore_partial(archive, fresh) == []  # already there, as far along
    local = fresh / unfinished.name / "checkpoint.pt"
    checkpoint = torch.load(local, map_location="cpu", weights_only=False)
    saved_epoch = checkpoint["state"]["epoch"]
    checkpoint["state"]["epoch"] = saved_epoch + 1  # this machine got further: kept
    torch.save(checkpoint, local)
    ahead = local.read_bytes()
    assert restore_partial(archive, fresh) == [] and local.read_bytes() == ahead
    checkpoint["state"]["epoch"] = saved_epoch - 1  # behind the saved one: replaced
    torch.save(checkpoint, local)
    assert [path.name for path in restore_partial(archive, fresh)] == [unfinished.name]
    assert local.read_bytes() == (unfinished / "checkpoint.pt").read_bytes()
    local.unlink()  # a run folder without a checkpoint is behind any saved one
    assert [path.name for path in restore_partial(archive, fresh)] == [unfinished.name]
    assert local.exists()
    drop_partial(archive, unfinished.name)
    # its folder goes with its last run: an empty folder would fail the script's commit
    assert not (archive / "partial").exists()


def test_reference_rows_say_how_they_differ_from_the_users(archive, trained_runs, tmp_path):
    """A user's 3-epoch run beside a reference row trained 60 epochs says so in both rows."""
    results, _ = trained_runs
    other = tmp_path / "other"
    shutil.copytree(archive, other)
    for record_path in other.glob("runs/*/record.json"):
        record = json.loads(record_path.read_text())
        record["config"]["training"]["epochs"] = 60
        record_path.write_text(json.dumps(record))
    build_report(results.path, tmp_path / "report", representations=tmp_path / "none",
                 reference_archive=other)
    lines = (tmp_path / "report" / "table.md").read_text().splitlines()
    mace = [line for line in lines if line.startswith("| mace")]
    assert len(mace) == 2
    assert "training.epochs=3" in mace[0] and "training.epochs=60" in mace[1]


def test_archived_status_and_energy_parts_come_from_the_archived_files(archive, trained_runs,
                                                                        tmp_path):
    """Runs archived before the status and the energy decomposition existed get both from
    their archived history and predictions; nothing archived is rewritten."""
    _, run_dirs = trained_runs
    other = tmp_path / "other"
    shutil.copytree(archive, other)
    folder = other / "runs" / run_dirs[0].name
    metrics = json.loads((folder / "metrics.json").read_text())
    for split in metrics.values():  # as an archive of 2026-11 holds them
        for values in split.values():
            values.pop("offset_mae"), values.pop("relative_energy_mae")
    (folder / "metrics.json").write_text(json.dumps(metrics))
    summary = json.loads((folder / "training.json").read_text())
    summary["history"][-1]["val_force_mae"] = 10 * min(
        record["val_force_mae"] for record in summary["history"])
    (folder / "training.json").write_text(json.dumps(summary))
    reloaded = load_archive(other, tmp_path / "r.db")
    run = next(r for r in reloaded.runs() if r["run_dir"] == str(folder.resolve()))
    assert run["training"]["status"] == "diverged"
    predictions = Predictions.load(folder / "predictions_ood_test.npz")
    error = predictions.energy - predictions.energy_reference
    offsets = {s: error[predictions.smiles == s].mean() for s in set(predictions.smiles)}
    stored = {(r["metric"]): r["value"] for r in reloaded.metrics("all")
              if r["run_id"] == run["run_id"] and r["split"] == "ood_test"}
    assert stored["offset_mae"] == pytest.approx(np.mean(np.abs(list(offsets.values()))))
    assert stored["relative_energy_mae"] == pytest.approx(np.mean(np.abs(
        error - np.array([offsets[s] for s in predictions.smiles]))))
    assert "offset_mae" not in json.loads((folder / "metrics.json").read_text())["ood_test"][
        "all"]


def test_an_archived_run_loads_as_an_ase_calculator_and_reproduces_its_predictions(
        archive, trained_runs, tiny_dataset):
    """Weights and model_build.json are archived: the archived folder alone gives the model,
    whose forces on test frames are the archived predictions."""
    from gmdbench.data.store import DatasetStore
    from gmdbench.runner.runs import run_calculator

    _, run_dirs = trained_runs
    store = DatasetStore(tiny_dataset)
    for run_dir in run_dirs:
        folder = archive / "runs" / run_dir.name
        assert (folder / "model_build.json").exists() and (folder / "best.pt").exists()
        calculator = run_calculator(folder)
        archived = Predictions.load(folder / "predictions_ood_test.npz")
        rows = sorted(store.rows(split="ood_test"), key=lambda r: (r.trajectory_id, r.frame))
        start = 0
        for row in rows[:2]:
            atoms = store.to_atoms(row)
            atoms.calc = calculator
            n = len(atoms)
            np.testing.assert_allclose(atoms.get_forces(), archived.forces[start:start + n],
                                       rtol=1e-4, atol=1e-5)
            assert atoms.get_potential_energy() == pytest.approx(archived.energy[
                rows.index(row)], abs=1e-3)
            start += n


def _relabelled_copy(source, target, force_factor: float):
    """The dataset at ``source`` with every force scaled by ``force_factor`` (same metadata,
    frames and keys): a rebuild on another machine when the factor is 1 + 1e-12."""
    from gmdbench.data.store import DatasetStore

    original = DatasetStore(source, write=False)
    copy = DatasetStore(target, create=True)
    copy.metadata = original.metadata
    with copy.session():
        for row in original.rows():
            copy.write_frame(row.numbers, row.positions, row.energy, row.forces * force_factor,
                             dict(row.key_value_pairs), momenta=row.get("momenta"))
    copy.finalize()
    return copy


@pytest.mark.parametrize("factor, shown", [(1 + 1e-12, True), (1 + 1e-3, False)])
def test_reference_rows_survive_last_bit_differences_only(archive, trained_runs, tiny_dataset,
                                                          tmp_path, factor, shown):
    """Labels that differ in their last bits (another CPU) still get the reference rows, with
    a note naming the check; labels that really differ do not."""
    from gmdbench.config import TrainConfig
    from gmdbench.runner.executor import evaluate_run, train_run
    from gmdbench.runner.results import ResultsStore
    from gmdbench.runner.runs import RunConfig

    assert archive_module.dataset_definitions(archive)  # export recorded the definition
    copy = _relabelled_copy(tiny_dataset, tmp_path / "rebuilt.db", factor)
    assert copy.content_hash() != trained_runs[0].runs()[0]["dataset_hash"]
    results = ResultsStore(tmp_path / "results.db")
    run = RunConfig(task="tiny_alkanes", model="schnet",
                    model_options={"hidden_channels": 16, "num_filters": 16},
                    training=TrainConfig(epochs=1, batch_size=4), seed=0,
                    dataset_hash=copy.content_hash())
    evaluate_run(train_run(run, copy.path, tmp_path / "runs"), results)
    build_report(results.path, tmp_path / "report", representations=tmp_path / "none",
                 reference_archive=archive)
    table = (tmp_path / "report" / "table.md").read_text()
    has_reference_rows = "| schnet [reference] |" in table
    assert has_reference_rows == shown
    if shown:
        assert "same definition" in table and "within 1e-06 eV" in table
    else:
        assert "the reference table is not shown" in table


def test_a_definition_recomputed_from_the_build_inputs_is_the_datasets_own(tiny_dataset,
                                                                           tiny_task,
                                                                           tiny_preset):
    """What reference-table report records for archived datasets (no file at hand) equals what
    a built dataset says of itself; another seed is another definition."""
    from gmdbench.data.content_hash import definition_hash
    from gmdbench.data.generate import dataset_identity
    from gmdbench.data.store import DatasetStore
    from gmdbench.reference.registry import ReferenceConfig

    store = DatasetStore(tiny_dataset, write=False)
    level = store.metadata["level_of_theory"]
    for seed, same in ((7, True), (8, False)):
        recomputed = definition_hash({**dataset_identity(tiny_task, tiny_preset,
                                                         ReferenceConfig(), seed),
                                      "level_of_theory": level})
        assert (recomputed == store.definition_hash()) == same


def _old_form_archive(archive, trained_runs, folder):
    """A copy of the archive as runs were archived before 2026-12-05: full float64
    predictions with their labels, metrics.json of those float64 values, no labels files."""
    _, run_dirs = trained_runs
    shutil.copytree(archive, folder)
    shutil.rmtree(folder / "datasets")
    (folder / "datasets").mkdir()
    for run_dir in run_dirs:
        for name in ("predictions_id_test.npz", "predictions_ood_test.npz", "metrics.json"):
            shutil.copyfile(run_dir / name, folder / "runs" / run_dir.name / name)
    return folder


def test_an_old_archive_is_rewritten_compact_with_its_metrics_recomputed(
        archive, trained_runs, tmp_path):
    _, run_dirs = trained_runs
    old = _old_form_archive(archive, trained_runs, tmp_path / "old")
    # a model's float64 forces: make the float32 cast visible in the metrics
    run = old / "runs" / run_dirs[0].name
    first = Predictions.load(run / "predictions_ood_test.npz")
    first.forces = first.forces + 1e-9 * np.arange(first.forces.size).reshape(-1, 3)
    first.save(run / "predictions_ood_test.npz")
    changes = compact_archive(old)
    assert set(changes) == {d.name for d in run_dirs}
    assert len(list((old / "datasets").glob("labels-*.npz"))) == 2  # shared by the three runs
    for run_dir in run_dirs:
        folder = old / "runs" / run_dir.name
        metrics = json.loads((folder / "metrics.json").read_text())
        for split in ("id_test", "ood_test"):
            path = folder / f"predictions_{split}.npz"
            assert Predictions.is_compact(path)
            predictions = Predictions.load(path)
            assert np.array_equal(predictions.forces_reference,
                                  Predictions.load(run_dir / f"predictions_{split}.npz")
                                  .forces_reference)
            assert metrics[split]["all"]["force_mae"] == force_mae(
                predictions.forces, predictions.forces_reference)
    assert 0 < changes[run_dirs[0].name]["force_mae"] < 1e-6
    # the runs' own float32 forces lose nothing: no metric changed, none reported
    assert all(changes[run_dir.name] == {} for run_dir in run_dirs[1:])
    # the change reported is the largest relative one over splits and molecules
    before = json.loads((run_dirs[0] / "metrics.json").read_text())
    after = json.loads((old / "runs" / run_dirs[0].name / "metrics.json").read_text())
    assert changes[run_dirs[0].name]["force_mae"] == max(
        abs(after[split][molecule]["force_mae"] - values["force_mae"]) / values["force_mae"]
        for split in ("id_test", "ood_test") for molecule, values in before[split].items())
    assert compact_archive(old) == {}  # nothing left to rewrite


def test_a_compaction_killed_after_its_metrics_is_finished_by_the_next_call(
        archive, trained_runs, tmp_path, monkeypatch):
    old = _old_form_archive(archive, trained_runs, tmp_path / "old")

    def killed(self, path, labels_dir):
        raise KeyboardInterrupt

    monkeypatch.setattr(Predictions, "save_compact", killed)
    with pytest.raises(KeyboardInterrupt):
        compact_archive(old)
    monkeypatch.undo()
    run = sorted((old / "runs").iterdir())[0]
    assert not Predictions.is_compact(run / "predictions_id_test.npz")  # still readable, full
    compact_archive(old)
    assert all(Predictions.is_compact(path) for path in (old / "runs").glob("*/predictions_*"))
    rebuilt = rebuild_reference_report(old, tmp_path / "report")
    assert rebuilt


def test_frames_of_another_dataset_do_not_share_a_labels_file(trained_runs, tmp_path):
    _, run_dirs = trained_runs
    predictions = Predictions.load(run_dirs[0] / "predictions_id_test.npz")
    predictions.save_compact(tmp_path / "a.npz", tmp_path)
    predictions.energy_reference = predictions.energy_reference + 1e-3  # relabelled frames
    with pytest.raises(ValueError, match="energy_reference"):
        predictions.save_compact(tmp_path / "b.npz", tmp_path)


def _evaluated_copy(trained_runs, tmp_path, index: int = 0):
    """A copy of one trained run's folder, recorded in a results store of its own as evaluated
    (export_run finds a run by its folder): a run to change before exporting it."""
    from gmdbench.runner.results import ResultsStore

    results, run_dirs = trained_runs
    copy = tmp_path / "runs" / run_dirs[index].name
    shutil.copytree(run_dirs[index], copy)
    record = next(run for run in results.runs()
                  if run["run_dir"] == str(run_dirs[index].resolve()))
    metrics = json.loads((copy / "metrics.json").read_text())
    store = ResultsStore(tmp_path / "copy.db")
    store.record_run(**{key: record[key] for key in archive_module.RECORD_KEYS},
                     run_dir=copy.resolve(), metrics=metrics)
    return store, copy


def test_the_repository_archive_is_the_clones_reference_folder(tmp_path, monkeypatch):
    """In a clone, the archive is <repository>/reference (it holds runs/); where the package
    is installed without the repository's reference/runs there is none."""
    from pathlib import Path

    repository = Path(__file__).resolve().parents[2]
    assert repository / "reference" == archive_module.REPOSITORY_ARCHIVE
    assert archive_module.default_archive() == repository / "reference"
    monkeypatch.setattr(archive_module, "REPOSITORY_ARCHIVE", tmp_path)
    assert archive_module.default_archive() is None


@pytest.mark.parametrize("size, kept", [(999_999, True), (1_000_000, False)])
def test_weights_are_archived_only_under_one_megabyte(trained_runs, tmp_path, size, kept):
    """The documented limit (best.pt only where under 1 MB) at its own value, not patched."""
    results, run_dir = _evaluated_copy(trained_runs, tmp_path)
    (run_dir / "best.pt").write_bytes(b"\0" * size)
    folder = export_run(run_dir, results, tmp_path / "archive")
    assert (folder / "best.pt").exists() == kept


def test_an_archive_that_does_not_exist_holds_no_runs(tmp_path):
    assert archived_run_ids(tmp_path / "nowhere") == set()


def test_a_run_exported_again_replaces_its_folder_with_sorted_records(trained_runs, tmp_path):
    """A re-export (a re-evaluated run) replaces the archived folder in one rename; record.json
    is written with sorted keys, so the archive's diffs stay small."""
    results, run_dirs = trained_runs
    first = export_run(run_dirs[0], results, tmp_path)
    (first / "stale.txt").write_text("from an earlier export")
    again = export_run(run_dirs[0], results, tmp_path)
    assert again == first and not (again / "stale.txt").exists()
    assert (again / "record.json").exists()
    keys = list(json.loads((again / "record.json").read_text()))
    assert keys == sorted(archive_module.RECORD_KEYS)


def test_the_datasets_distance_statistics_are_archived_beside_its_labels(trained_runs,
                                                                         tiny_dataset,
                                                                         tmp_path):
    from gmdbench.data.store import dataset_distance_path

    results, run_dir = _evaluated_copy(trained_runs, tmp_path)
    dataset = tmp_path / "data" / tiny_dataset.name
    dataset.parent.mkdir()
    shutil.copyfile(tiny_dataset, dataset)
    dataset_distance_path(dataset).write_text('{"ood_test": [0.5]}')
    config = json.loads((run_dir / "config.json").read_text())
    config["dataset_path"] = str(dataset)
    (run_dir / "config.json").write_text(json.dumps(config))
    export_run(run_dir, results, tmp_path / "archive")
    archived = tmp_path / "archive" / "datasets" / dataset_distance_path(dataset).name
    assert archived.read_text() == '{"ood_test": [0.5]}'
    assert list((tmp_path / "archive" / "datasets").glob("labels-*.npz"))


def test_a_torn_run_folder_is_skipped_by_load_and_compaction(archive, trained_runs, tmp_path):
    """A hidden staging folder (a kill mid-export) is neither a run to load nor one to
    compact, even when it holds full predictions and no metrics.json yet."""
    results, run_dirs = trained_runs
    copy = tmp_path / "copy"
    shutil.copytree(archive, copy)
    torn = copy / "runs" / f".{run_dirs[0].name}.tmp"
    torn.mkdir()
    shutil.copyfile(run_dirs[0] / "predictions_id_test.npz", torn / "predictions_id_test.npz")
    assert {run["run_id"] for run in load_archive(copy, tmp_path / "r.db").runs()} == \
        {run["run_id"] for run in results.runs()}
    assert compact_archive(copy) == {}
    assert not Predictions.is_compact(torn / "predictions_id_test.npz")


@pytest.mark.parametrize("damage", ["no record", "record without its task"])
def test_an_archived_run_missing_a_file_or_a_key_is_named(archive, tmp_path, damage):
    copy = tmp_path / "copy"
    shutil.copytree(archive, copy)
    run = sorted((copy / "runs").iterdir())[0]
    if damage == "no record":
        (run / "record.json").unlink()
    else:
        record = json.loads((run / "record.json").read_text())
        del record["task"]
        (run / "record.json").write_text(json.dumps(record))
    with pytest.raises(ArchiveError, match=re.escape(f"archived run {run} cannot be read")):
        load_archive(copy, tmp_path / "r.db")


def test_a_saved_run_at_epoch_zero_is_ahead_of_a_local_folder_without_a_checkpoint(
        trained_runs, tmp_path):
    """_epochs says -1 for a folder without a checkpoint, below any saved epoch, even 0."""
    from gmdbench.runner.archive import restore_partial, save_partial

    _, run_dirs = trained_runs
    saved = save_partial(run_dirs[0], tmp_path / "archive")
    checkpoint = torch.load(saved / "checkpoint.pt", map_location="cpu", weights_only=False)
    checkpoint["state"]["epoch"] = 0
    torch.save(checkpoint, saved / "checkpoint.pt")
    local = tmp_path / "fresh" / run_dirs[0].name
    local.mkdir(parents=True)
    assert restore_partial(tmp_path / "archive", tmp_path / "fresh") == [local]
    assert (local / "checkpoint.pt").read_bytes() == (saved / "checkpoint.pt").read_bytes()


def test_dropping_one_of_two_saved_runs_keeps_the_other(trained_runs, tmp_path):
    from gmdbench.runner.archive import drop_partial, save_partial

    _, run_dirs = trained_runs
    for run_dir in run_dirs[:2]:
        save_partial(run_dir, tmp_path)
    drop_partial(tmp_path, run_dirs[0].name)
    assert [path.name for path in (tmp_path / "partial").iterdir()] == [run_dirs[1].name]


def test_a_saved_run_needs_a_checkpoint(tmp_path):
    from gmdbench.runner.archive import save_partial

    (tmp_path / "run").mkdir()
    with pytest.raises(ArchiveError, match=r"has no checkpoint\.pt"):
        save_partial(tmp_path / "run", tmp_path / "archive")
    assert not (tmp_path / "archive").exists()


def test_an_archived_runs_dataset_path_is_relative_to_its_folder(tmp_path):
    from gmdbench.runner.archive import resolve_dataset_path

    run = tmp_path / "archive" / "runs" / "one"
    assert resolve_dataset_path(run, "../../datasets/d.db") == \
        (tmp_path / "archive" / "datasets" / "d.db").resolve()
    assert resolve_dataset_path(run, str(tmp_path / "elsewhere.db")) == tmp_path / "elsewhere.db"
