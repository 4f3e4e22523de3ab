"""The `gmd` command as a user runs it: real subprocesses, real exit codes."""

import ase.io
import pytest

from gmdbench.data.store import DatasetStore
from tests_support import DATA, gmd


def test_tasks_list_and_show():
    listed = gmd("tasks", "list")
    assert listed.returncode == 0
    for name in ("chain_extension", "fragment_composition_augmented", "fragment_combination"):
        assert name in listed.stdout
    shown = gmd("tasks", "show", "fragment_duplication")
    assert shown.returncode == 0
    assert "O=C(O)CCC(=O)O" in shown.stdout
    assert "carboxylic_acid x2 (training max 1)" in shown.stdout
    user = gmd("tasks", "show", DATA / "tiny_task.yaml")
    assert user.returncode == 0 and "CCC" in user.stdout


def test_build_info_export(tmp_path):
    out = tmp_path / "tiny.db"
    built = gmd("data", "build", DATA / "tiny_task.yaml", "--preset", DATA / "tiny_preset.yaml",
                "--workers", "1", "--seed", "7", "--out", out)
    assert built.returncode == 0, built.stderr
    info = gmd("data", "info", out)
    assert info.returncode == 0
    hash_lines = [line for line in info.stdout.splitlines() if line.startswith("hash: ")]
    assert hash_lines == [f"hash: {DatasetStore(out).content_hash()}"]
    assert "GFN2-xTB" in info.stdout and "failures: 0" in info.stdout
    assert "ood_test" in info.stdout and "CCC" in info.stdout
    exported = gmd("data", "export", out, "--format", "extxyz", "--out", tmp_path / "t.extxyz")
    assert exported.returncode == 0
    assert len(ase.io.read(tmp_path / "t.extxyz", index=":")) == DatasetStore(out).count()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tasks", "show", "no_such_task"], "unknown task 'no_such_task'"),
        (["data", "build", "chain_extension", "--preset", "huge"], "unknown preset 'huge'"),
        (["data", "build", "chain_extension", "--reference", "dft"],
         "unknown reference method 'dft'"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(args, message):
    result = gmd(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_yaml_key_and_bad_smiles_in_a_user_task(tmp_path):
    typo = tmp_path / "typo.yaml"
    typo.write_text("name: t\nfamilies:\n  - {name: a, role: train, smiles: [CC], rol: x}\n"
                    "  - {name: b, role: ood, smiles: [CCC]}\n")
    result = gmd("tasks", "show", typo)
    assert result.returncode == 2 and "families.0.rol" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: t\nfamilies:\n  - {name: a, role: train, smiles: [CC, C1CC]}\n"
                   "  - {name: b, role: ood, smiles: [CCC]}\n")
    result = gmd("data", "build", bad, "--out", tmp_path / "bad.db")
    assert result.returncode == 2 and "'C1CC'" in result.stderr
    assert not (tmp_path / "bad.db").exists()


def test_corrupt_dataset_exits_non_zero(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"\x00garbage" * 64)
    result = gmd("data", "info", bad)
    assert result.returncode == 2 and str(bad) in result.stderr


def test_failed_frames_give_a_non_zero_exit_and_keep_the_rest(tmp_path):
    out = tmp_path / "scf.db"
    result = gmd("data", "build", DATA / "tiny_task.yaml", "--preset", DATA / "tiny_preset.yaml",
                 "--reference", "fake_calculators:SCFFailsForPropane", "--workers", "1",
                 "--out", out)
    assert result.returncode == 3
    assert "1 frame(s) failed" in result.stderr
    assert "SCF not converged" in result.stdout and "CCC" in result.stdout
    assert DatasetStore(out).count() == 2 * 4 * 4  # methane and ethane, untouched
    allowed = gmd("data", "build", DATA / "tiny_task.yaml", "--preset",
                  DATA / "tiny_preset.yaml", "--reference",
                  "fake_calculators:SCFFailsForPropane", "--workers", "1", "--out", out,
                  "--allow-failures")
    assert allowed.returncode == 0


def test_paper_preset_states_its_cost_and_asks(tmp_path):
    out = tmp_path / "paper.db"
    result = gmd("data", "build", "fragment_duplication", "--preset", "paper", "--out", out,
                 input_text="n\n")
    assert result.returncode != 0
    assert "estimated cost" in result.stdout and "CPU-hours" in result.stdout
    assert not out.exists()


def test_any_large_build_states_its_cost_and_needs_yes_whatever_its_name(tmp_path,
                                                                           tiny_task_path):
    """The threshold is the planned reference calls, not the preset's name; without a terminal
    the build is refused in one line, nothing written."""
    preset = tmp_path / "huge.yaml"
    preset.write_text("name: everyday\ntrajectories: {train: 100000, val: 1, id_test: 1, "
                      "ood_test: 1}\n")
    out = tmp_path / "huge.db"
    result = gmd("data", "build", tiny_task_path, "--preset", preset, "--out", out)
    assert result.returncode == 2
    assert "estimated cost" in result.stdout and "--yes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_run_help_names_every_builtin_matrix_and_each_exists():
    """`gmd run --help` lists exactly the built-in matrices, and each name loads."""
    from gmdbench.pipeline.matrix import BUILTIN_MATRICES, load_matrix

    shown = gmd("run", "--help")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split()).replace("│ ", "").replace(" │", "")
    on_disk = sorted(path.stem for path in BUILTIN_MATRICES.glob("*.yaml"))
    assert {"quick", "standard", "reference", "why-ratios"} <= set(on_disk)
    for name in on_disk:
        assert name in text, name
        assert load_matrix(name).name == name


def test_active_learn_help_names_every_builtin_study_and_each_exists():
    """`gmd active-learn --help` lists exactly the built-in studies (the powered one too),
    and each name loads as the study of that name."""
    from gmdbench.pipeline.active_learning import BUILTIN_STUDIES, load_study

    shown = gmd("active-learn", "--help")
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split()).replace("│ ", "").replace(" │", "")
    on_disk = sorted(path.stem for path in BUILTIN_STUDIES.glob("*.yaml"))
    assert {"fragment-duplication-quick", "fragment-duplication-powered"} <= set(on_disk)
    for name in on_disk:
        assert name in text, name
        assert load_study(name).name == name
