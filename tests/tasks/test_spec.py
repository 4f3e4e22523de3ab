from pathlib import Path

import pytest
import yaml

from gmdbench.chem.molecules import canonical_smiles
from gmdbench.errors import InvalidSmilesError, TaskSpecError, UnknownTaskError
from gmdbench.tasks.spec import builtin_task_names, load_task

DESIGN_TABLE = {
    # task: (train molecules, OOD molecules) as DESIGN.md section 4 lists them
    "chain_extension": (["C" * n for n in range(2, 7)], ["C" * n for n in range(7, 14)]),
    "fragment_composition": (
        ["C" * n + "O" for n in range(1, 9)] + ["O=C" + "C" * k for k in range(8)],
        ["O=C(O)" + "C" * k for k in range(8)],
    ),
    "fragment_duplication": (
        ["O=C(O)" + "C" * k for k in range(1, 8)],
        ["O=C(O)" + "C" * k + "C(=O)O" for k in range(1, 7)],
    ),
    "fragment_combination": (
        ["C" * n + "O" for n in range(2, 9)] + ["N" + "C" * n for n in range(2, 9)],
        ["N" + "C" * n + "O" for n in range(2, 7)],
    ),
}


def _roles(task):
    molecules = task.molecules()
    return ({m.smiles for m in molecules if m.role == "train"},
            {m.smiles for m in molecules if m.role == "ood"})


def test_builtin_tasks_are_the_gmd26_tasks_and_their_augmented_variants():
    assert builtin_task_names() == sorted([*DESIGN_TABLE, "chain_extension_augmented",
                                           "fragment_composition_augmented"])


@pytest.mark.parametrize("name", sorted(DESIGN_TABLE))
def test_builtin_molecules_match_the_design(name):
    train, ood = _roles(load_task(name))
    expected_train, expected_ood = DESIGN_TABLE[name]
    assert train == {canonical_smiles(s) for s in expected_train}
    assert ood == {canonical_smiles(s) for s in expected_ood}


def test_augmented_variants_add_training_molecules_and_keep_the_ood_set():
    base_train, base_ood = _roles(load_task("chain_extension"))
    train, ood = _roles(load_task("chain_extension_augmented"))
    assert ood == base_ood
    assert train - base_train == {canonical_smiles("C" * n + "O") for n in range(2, 14)}
    base_train, base_ood = _roles(load_task("fragment_composition"))
    train, ood = _roles(load_task("fragment_composition_augmented"))
    assert ood == base_ood
    added = train - base_train
    assert canonical_smiles("OCC=O") in added and len(added) == 7


@pytest.mark.parametrize("name", builtin_task_names())
def test_no_ood_molecule_is_a_training_molecule(name):
    train, ood = _roles(load_task(name))
    assert train and ood and not train & ood


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


BASE = {"name": "t", "families": [{"name": "a", "role": "train", "smiles": ["CCO"]},
                                  {"name": "b", "role": "ood", "smiles": ["CCCO"]}]}


def test_user_yaml_works_like_a_builtin(tmp_path):
    task = load_task(_write(tmp_path, BASE))
    assert _roles(task) == ({"CCO"}, {"CCCO"})


def test_unknown_key_is_named(tmp_path):
    data = {**BASE, "familes": []}
    with pytest.raises(TaskSpecError, match="familes: Extra inputs"):
        load_task(_write(tmp_path, data))
    data = {**BASE, "families": [{**BASE["families"][0], "smile": ["C"]}, BASE["families"][1]]}
    with pytest.raises(TaskSpecError, match=r"families\.0\.smile: Extra inputs are not "
                       r"permitted \(did you mean smiles\? allowed: description, name, role, "
                       r"series, smiles\)"):
        load_task(_write(tmp_path, data))


def test_a_misspelt_key_gets_the_allowed_keys_of_its_own_level(tmp_path):
    """Close misspellings and initialisms (lr) are guessed, otherwise the keys are only listed,
    at the level of the key (a model entry's training block, a matrix's model entry); an
    aliased field is listed by its YAML key."""
    from pydantic import ValidationError

    from gmdbench.config import TrainConfig, format_validation_error
    from gmdbench.pipeline.matrix import MatrixConfig
    from gmdbench.probes.suite import PathSpec

    def message(model, data):
        with pytest.raises(ValidationError) as caught:
            model.model_validate(data)
        return format_validation_error(caught.value, "f.yaml", model)

    assert "epoch: Extra inputs are not permitted (did you mean epochs? allowed: batch_size," \
        in message(TrainConfig, {"epoch": 3})
    assert "(did you mean learning_rate? allowed:" in message(TrainConfig, {"lr": 0.1})
    assert "zzz: Extra inputs are not permitted (allowed: batch_size," in \
        message(TrainConfig, {"zzz": 1})
    matrix = {"name": "m", "tasks": ["t"]}
    assert "models.0.training.lr: Extra inputs are not permitted (did you mean learning_rate?" \
        in message(MatrixConfig, {**matrix, "models": [{"name": "schnet",
                                                        "training": {"lr": 1}}]})
    assert "models.0.sed: Extra inputs are not permitted (did you mean seed? allowed: name," \
        in message(MatrixConfig, {**matrix, "models": [{"name": "schnet", "sed": 1}]})
    assert "(did you mean class? allowed: class, " in message(PathSpec, {"name": "p",
                                                                          "clas": "x"})
    with pytest.raises(ValidationError) as caught:
        TrainConfig.model_validate({"zzz": 1})
    assert format_validation_error(caught.value, "f.yaml") == \
        "f.yaml: zzz: Extra inputs are not permitted"  # no model given: no hint


def test_empty_role_is_refused(tmp_path):
    data = {**BASE, "families": [BASE["families"][0]]}
    with pytest.raises(TaskSpecError, match="role 'ood' is empty"):
        load_task(_write(tmp_path, data))
    data = {**BASE, "families": [{"name": "a", "role": "train", "smiles": []},
                                 BASE["families"][1]]}
    with pytest.raises(TaskSpecError, match="empty SMILES list"):
        load_task(_write(tmp_path, data))


def test_ood_molecule_in_training_is_refused(tmp_path):
    data = {**BASE, "families": [*BASE["families"],
                                 {"name": "c", "role": "train", "smiles": ["OCCC"]}]}
    with pytest.raises(TaskSpecError, match="OOD molecule CCCO also plays a training role"):
        load_task(_write(tmp_path, data))


def test_invalid_smiles_in_a_task_names_file_and_smiles(tmp_path):
    data = {**BASE, "families": [{"name": "a", "role": "train", "smiles": ["C1CC"]},
                                 BASE["families"][1]]}
    path = _write(tmp_path, data)
    with pytest.raises(InvalidSmilesError, match=rf"{path}.*'C1CC'"):
        load_task(path)


def test_unknown_task_and_broken_yaml(tmp_path):
    with pytest.raises(UnknownTaskError, match="unknown task 'chain_extention'"):
        load_task("chain_extention")
    with pytest.raises(TaskSpecError, match="not valid YAML"):
        load_task(_write(tmp_path, "name: [unclosed"))


def test_yaml_1_1_words_stay_strings_and_merge_keys_work():
    """`NO` is nitric oxide, not false; only true/false are booleans; `<<:` merges."""
    from gmdbench.config import parse_yaml

    assert parse_yaml("smiles: [NO, 'C', yes, on, Off]") == {
        "smiles": ["NO", "C", "yes", "on", "Off"]}
    assert parse_yaml("a: true\nb: False") == {"a": True, "b": False}
    assert parse_yaml("x: &x {a: 1, b: 2}\ny: {<<: *x, b: 3}")["y"] == {"a": 1, "b": 3}
