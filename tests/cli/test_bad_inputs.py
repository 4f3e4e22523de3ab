"""Bad input, as a new user types it: each gets one line on stderr naming it, and exit 2.

The commands run in-process through ``gmdbench.cli.main`` (the console script's entry point),
so the 40-odd cases cost one import, not one interpreter each.
"""

from __future__ import annotations

import sqlite3
import sys
from contextlib import closing
from pathlib import Path

import pytest

from gmdbench.cli import main
from tests_support import DATA

TASK = str(DATA / "tiny_task.yaml")


def _files(tmp: Path, tiny_dataset: Path) -> dict[str, str]:
    """The files the cases name: a few broken on purpose."""
    (tmp / "text.db").write_text("this is not a database\n")
    (tmp / "bad_train.yaml").write_text("training: {epoks: 3}\n")
    (tmp / "broken.yaml").write_text("name: [unclosed\n")
    (tmp / "bad_matrix.yaml").write_text(f"name: m\ntasks: [{TASK}]\nmodelz: []\n")
    (tmp / "nan.extxyz").write_text(
        "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=nan pbc=\"F F F\"\n"
        "H 0 0 0 0 0 0\nH 0 0 0.74 0 0 0\n")
    (tmp / "inf_forces.extxyz").write_text(
        "2\nProperties=species:S:1:pos:R:3:forces:R:3 energy=-1.0 pbc=\"F F F\"\n"
        "H 0 0 0 inf 0 0\nH 0 0 0.74 0 0 0\n")
    (tmp / "missing_path_suite.yaml").write_text(
        "name: s\nsystem: {builder: 'ase.build:bulk', options: {name: Cu, cubic: true}}\n"
        "reference: emt\n"
        "training_data: {trajectories: [train, val, id_test], frames_per_trajectory: 2}\n"
        "paths:\n  - {name: p, file: no_such_path.extxyz, self_consistent: false}\n"
        "models:\n  - {name: schnet, regime: scratch}\n")
    (tmp / "twice_train.yaml").write_text("training: {epochs: 3}\ntraining: {epochs: 50}\n")
    (tmp / "yes_epochs.yaml").write_text("training: {epochs: yes}\n")
    (tmp / "twice_task.yaml").write_text(
        "name: t\nfragments: [methyl]\nfamilies:\n  - {name: a, role: train, smiles: [C]}\n"
        "families:\n  - {name: b, role: ood, smiles: [CC]}\n")
    (tmp / "escape_task.yaml").write_text(
        "name: ../../escape\nfragments: [methyl]\nfamilies:\n"
        "  - {name: a, role: train, smiles: [C]}\n  - {name: b, role: ood, smiles: [CC]}\n")
    (tmp / "slash_matrix.yaml").write_text(
        f"name: a/b\ntasks: [{TASK}]\nmodels: [{{name: schnet}}]\n")
    (tmp / "negative_seed.yaml").write_text(
        f"name: m\ntasks: [{TASK}]\nseeds: [-1]\nmodels: [{{name: schnet}}]\n")
    import ase.db
    from ase.build import molecule

    ase.db.connect(str(tmp / "foreign_ase.db")).write(molecule("H2O"))  # another program's
    (tmp / "empty.db").write_bytes(b"")
    with closing(sqlite3.connect(tmp / "other.sqlite")) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
        connection.commit()
    (tmp / "run").mkdir()
    for name, text in (("list_run", "[1]"), ("misspelt_run", '{"task": "t", "model": "schnet", '
                                            '"dataset_hash": "x", "seeed": 1}')):
        (tmp / name).mkdir()
        (tmp / name / "config.json").write_text(text)
    return {"data": str(tiny_dataset), "tmp": str(tmp)}


# (arguments, a string the one line must contain); {data} and {tmp} are filled in
CASES = [
    # usage errors: missing, unknown or malformed options
    (["train", "--task", TASK, "--data", "{data}"], "--model"),
    (["data", "info", "{data}", "--colour"], "--colour"),
    (["data", "build", TASK, "--workers", "0"], "--workers"),
    (["data", "build", TASK, "--seed", "1.5"], "1.5"),
    (["data", "build", TASK, "--seed", "-3"], "-3"),
    (["train", "--task", TASK, "--model", "schnet", "--data", "{data}", "--seed", "-1"], "-1"),
    (["train", "--task", TASK, "--model", "schnet", "--data", "{data}", "--regime", "warm"],
     "warm"),
    (["distance", "{tmp}/run", "--k", "0"], "--k"),
    (["distance", "{tmp}/run", "--bins", "0"], "--bins"),
    (["distance", "{tmp}/run", "--descriptor", "soup"], "soup"),
    (["representations", "{tmp}/run", "--perplexity", "0.5"], "0.5"),
    (["representations", "{tmp}/run", "--frames", "0"], "--frames"),
    (["run", "quick", "--executor", "spark"], "spark"),
    (["run", "quick", "--workers", "-2"], "--workers"),
    (["data", "export", "{data}", "--format", "pdb"], "pdb"),
    (["tasks", "shoe", "x"], "shoe"),
    # unknown names
    (["tasks", "show", "chain_extention"], "chain_extention"),
    (["data", "build", "fragment_duplicatoin"], "fragment_duplicatoin"),
    (["data", "build", TASK, "--preset", "quik"], "quik"),
    (["data", "build", TASK, "--reference", "gfn3-xtb"], "gfn3-xtb"),
    (["data", "build", TASK, "--reference", "pyscf:b3lyp"], "pyscf:b3lyp"),
    (["data", "build", TASK, "--reference", "pyscf:nofunctional/sto-3g", "--out",
      "{tmp}/pyscf.db"], "nofunctional"),
    (["data", "build", TASK, "--reference", "no_such_module:Calculator"], "no_such_module"),
    (["run", "standrad"], "standrad"),
    (["probe", "run", "cr_sb2te4"], "cr_sb2te4"),
    (["train", "--task", TASK, "--model", "schnett", "--data", "{data}"], "schnett"),
    (["train", "--task", TASK, "--model", "schnet", "--data", "{data}", "--size", "huge"],
     "huge"),
    (["train", "--task", TASK, "--model", "schnet", "--data", "{data}", "--config", "papr"],
     "papr"),
    # files that are missing, broken or of another kind
    (["data", "info", "{tmp}/missing.db"], "missing.db"),
    (["data", "info", "{tmp}/text.db"], "text.db"),
    (["data", "export", "{tmp}/missing.db"], "missing.db"),
    (["data", "import", "{tmp}/missing.extxyz", "--out", "{tmp}/x.db"], "missing.extxyz"),
    (["data", "import", "{tmp}/nan.extxyz", "--out", "{tmp}/nan.db"], "frame 0"),
    (["data", "import", "{tmp}/inf_forces.extxyz", "--out", "{tmp}/inf.db"], "non-finite forces"),
    (["data", "build", "{tmp}/broken.yaml"], "broken.yaml"),
    (["train", "--task", TASK, "--model", "schnet", "--data", "{tmp}/missing.db"],
     "missing.db"),
    (["train", "--task", TASK, "--model", "schnet", "--data", "{data}", "--config",
      "{tmp}/bad_train.yaml"], "epoks"),
    (["train", "--task", "chain_extension", "--model", "schnet", "--data", "{data}"],
     "tiny_alkanes"),
    (["train", "--task", TASK, "--model", "ani1x", "--data", "{data}"], "scratch"),
    (["evaluate", "{tmp}/no-run"], "no-run"),
    (["distance", "{tmp}/no-run"], "no-run"),
    (["report", "{tmp}/missing.db"], "missing.db"),
    (["report", "{tmp}/text.db"], "text.db"),
    (["report", "{tmp}/text.db", "--reference-archive", "{tmp}/no_archive"], "no_archive"),
    (["reference-table", "report", "--archive", "{tmp}/no_archive"], "no_archive"),
    (["reference-table", "run", "--limit", "0"], "--limit"),
    (["uncertainty", "{tmp}/run"], "two or more"),
    (["uncertainty", "{tmp}/run", "{tmp}/no_run"], "no_run"),
    (["uncertainty", "{tmp}/run", "{tmp}/run", "--bins", "1"], "--bins"),
    (["active-learn", "no_such_study"], "no_such_study"),
    (["active-learn-report", "{tmp}/no_study"], "no_study"),
    (["explore", "{tmp}/run", "{tmp}/no_run", "--smiles", "CCCC", "--low", "0.1", "--high",
      "1"], "no_run"),
    (["explore", "{tmp}/run", "{tmp}/run", "--smiles", "CCCC", "--low", "1", "--high",
      "0.5"], "high"),
    (["explore", "{tmp}/run", "{tmp}/run", "--smiles", "CCCC", "--low", "0.1", "--high",
      "1", "--base", "{tmp}/missing.db"], "missing.db"),
    (["active-learn", "{tmp}/broken.yaml"], "broken.yaml"),
    (["reference-table", "run", "--matrix", "no_such_matrix"], "no_such_matrix"),
    (["run", "{tmp}/bad_matrix.yaml"], "modelz"),
    (["probe", "run", "{tmp}/missing_path_suite.yaml"], "no_such_path.extxyz"),
    # YAML read strictly: a key twice, YAML 1.1 words for numbers, ranges checked at load
    (["train", "--task", TASK, "--model", "schnet", "--data", "{data}", "--config",
      "{tmp}/twice_train.yaml"], "'training' is given twice"),
    (["train", "--task", TASK, "--model", "schnet", "--data", "{data}", "--config",
      "{tmp}/yes_epochs.yaml"], "training.epochs"),
    (["tasks", "show", "{tmp}/twice_task.yaml"], "'families' is given twice"),
    # names become file names: one safe word, never a path
    (["data", "build", "{tmp}/escape_task.yaml"], "name"),
    (["run", "{tmp}/slash_matrix.yaml"], "name"),
    (["run", "{tmp}/negative_seed.yaml"], "seeds.0"),
    # reading never writes; output never overwrites input
    (["data", "info", "{tmp}/foreign_ase.db"], "not a gmd-bench dataset"),
    (["data", "info", "{tmp}/empty.db"], "not a gmd-bench dataset"),
    (["data", "export", "{tmp}/foreign_ase.db"], "not a gmd-bench dataset"),
    (["report", "{tmp}/other.sqlite"], "not a gmd-bench results store"),
    (["report", "{tmp}/foreign_ase.db"], "not a gmd-bench results store"),
    (["report", "{tmp}/empty.db"], "not a gmd-bench results store"),
    (["data", "export", "{data}", "--out", "{data}"], "is the dataset being exported"),
    (["data", "info", "{tmp}"], "is a folder"),
    (["evaluate", "{tmp}/list_run", "--results", "{tmp}/r.db"], "expected a JSON object"),
    (["evaluate", "{tmp}/misspelt_run", "--results", "{tmp}/r.db"],
     "seeed: Extra inputs are not permitted (did you mean seed?"),
    # a place that cannot be written
    (["data", "build", TASK, "--out", "/proc/gmd-bench/x.db"], "/proc/gmd-bench"),
]


@pytest.mark.parametrize(("arguments", "named"), CASES, ids=lambda v: " ".join(v)
                         if isinstance(v, list) else v)
def test_bad_input_gives_one_line_naming_it_and_exit_2(arguments, named, tiny_dataset,
                                                       tmp_path, capsys, monkeypatch):
    files = _files(tmp_path, tiny_dataset)
    inputs = {path: path.read_bytes() for path in tmp_path.iterdir() if path.is_file()}
    dataset_before = Path(tiny_dataset).read_bytes()
    argv = ["gmd", *(a.format(**files) for a in arguments)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert exit_info.value.code == 2, (argv, captured.err)
    # nothing given as input was changed by the refused command
    for path, content in inputs.items():
        assert path.read_bytes() == content, f"{path.name} was changed by {argv}"
    assert Path(tiny_dataset).read_bytes() == dataset_before
    assert len(lines) == 1, (argv, captured.err)
    assert lines[0].startswith("error: "), lines
    assert named in lines[0], (named, lines[0])


def test_a_failed_train_leaves_no_run_directory(tiny_dataset, tmp_path, capsys, monkeypatch):
    """The model cannot run the regime: refused before training, and nothing half-made stays."""
    runs = tmp_path / "runs"
    monkeypatch.setattr(sys, "argv", ["gmd", "train", "--task", TASK, "--model", "schnet",
                                      "--data", str(tiny_dataset), "--regime", "zero-shot",
                                      "--runs", str(runs)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2
    assert "cannot run regime 'zero-shot'" in capsys.readouterr().err
    assert not runs.exists() or not any(runs.iterdir())


def test_a_bad_pyscf_functional_leaves_no_empty_dataset(tmp_path, capsys, monkeypatch):
    out = tmp_path / "pyscf.db"
    monkeypatch.setattr(sys, "argv", ["gmd", "data", "build", TASK, "--reference",
                                      "pyscf:b3lyb/sto-3g", "--out", str(out)])
    with pytest.raises(SystemExit):
        main()
    assert "unknown functional 'b3lyb'" in capsys.readouterr().err
    assert not out.exists()
