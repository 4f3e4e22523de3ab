from collections import defaultdict

from gmdbench.config import load_preset
from gmdbench.tasks.spec import load_task
from gmdbench.tasks.split import derive_seed, novel_fragments, plan_trajectories


def test_trajectories_are_grouped_and_never_shared():
    task = load_task("fragment_duplication")
    preset = load_preset("quick")
    plans = plan_trajectories(task, preset, seed=3)
    roles = {m.smiles: m.role for m in task.molecules()}
    by_molecule = defaultdict(list)
    for plan in plans:
        by_molecule[plan.smiles].append(plan)
        # OOD molecules only feed ood_test; training molecules never do
        assert (plan.split == "ood_test") == (roles[plan.smiles] == "ood")
    assert len({p.trajectory_id for p in plans}) == len(plans)
    for smiles, molecule_plans in by_molecule.items():
        # every trajectory of a molecule has its own conformer and its own seed
        assert len({p.conformer_index for p in molecule_plans}) == len(molecule_plans)
        assert len({p.seed for p in molecule_plans}) == len(molecule_plans)
        if roles[smiles] == "train":
            assert {p.split for p in molecule_plans} == {"train", "val", "id_test"}


def test_seeds_are_stable_and_depend_on_the_user_seed():
    task, preset = load_task("chain_extension"), load_preset("quick")
    assert plan_trajectories(task, preset, 1) == plan_trajectories(task, preset, 1)
    assert plan_trajectories(task, preset, 1)[0].seed != plan_trajectories(task, preset, 2)[0].seed
    assert derive_seed(0, "x") == derive_seed(0, "x") != derive_seed(0, "y")


def test_novel_fragments_say_what_ood_molecules_add():
    assert novel_fragments(load_task("fragment_duplication"))["O=C(O)CC(=O)O"] == [
        "carboxylic_acid x2 (training max 1)"]
    combination = novel_fragments(load_task("fragment_combination"))["NCCO"]
    assert any("hydroxyl + primary_amine together" in note for note in combination)
    assert novel_fragments(load_task("fragment_composition"))["CC(=O)O"][0].startswith(
        "carboxylic_acid x1 (training max 0)")


def _rows(split, molecules, trajectories, frames):
    from types import SimpleNamespace

    return [SimpleNamespace(smiles=m, trajectory_id=f"{i}:{split}:{k}", frame=f)
            for i, m in enumerate(molecules) for k in range(trajectories) for f in range(frames)]


def _by_split():
    molecules = ["CC(=O)O", "CCC(=O)O"]
    return {"train": _rows("train", molecules, 4, 10), "val": _rows("val", molecules, 1, 10),
            "id_test": _rows("id_test", molecules, 1, 6),
            "ood_test": _rows("ood_test", ["O=C(O)CC(=O)O"], 2, 10)}


def test_train_trajectory_subsample_keeps_every_other_split():
    from gmdbench.tasks.split import select_frames

    rows = _by_split()
    train = select_frames(rows, "train", train_trajectories=2)
    assert {r.trajectory_id.rsplit(":", 1)[1] for r in train} == {"0", "1"}
    assert len(train) == 2 * 2 * 10
    for split in ("val", "id_test", "ood_test"):
        assert select_frames(rows, split, train_trajectories=2) == rows[split]


def test_random_frames_draw_id_test_from_the_pooled_training_trajectories():
    from gmdbench.tasks.split import select_frames

    rows = _by_split()
    train = select_frames(rows, "train", "random-frames")
    test = select_frames(rows, "id_test", "random-frames")
    pooled = {id(r) for r in rows["train"] + rows["id_test"]}
    # same sizes per molecule as the trajectory protocol (6 test, 40 train), disjoint, pooled
    for smiles in ("CC(=O)O", "CCC(=O)O"):
        assert sum(r.smiles == smiles for r in test) == 6
        assert sum(r.smiles == smiles for r in train) == 40
    assert not {id(r) for r in train} & {id(r) for r in test}
    assert {id(r) for r in train} | {id(r) for r in test} == pooled
    # the test frames now mostly come from train trajectories (5 in 6 of the pool)
    assert sum(":train:" in r.trajectory_id for r in test) > 6
    # deterministic, and val / ood_test untouched
    assert [id(r) for r in select_frames(rows, "id_test", "random-frames")] == \
        [id(r) for r in test]
    assert select_frames(rows, "val", "random-frames") == rows["val"]
    assert select_frames(rows, "ood_test", "random-frames") == rows["ood_test"]


def test_data_options_enter_the_run_hash_only_where_set():
    from gmdbench.config import TrainConfig
    from gmdbench.runner.runs import RunConfig

    plain = RunConfig(task="t", model="schnet", dataset_hash="h")
    assert "split" not in plain.resolved() and "schedule" not in plain.resolved()["training"]
    changed = [plain.model_copy(update=update).run_id for update in (
        {"split": "random-frames"}, {"train_trajectories": 2},
        {"training": TrainConfig(schedule="cosine")})]
    assert len({plain.run_id, *changed}) == 4


def test_each_split_gets_exactly_its_own_trajectory_count():
    """Counts that differ per split (train 3, val 2, id_test 1, ood_test 4): a swap of any two
    splits, or of a role, changes a count here."""
    from gmdbench.config import PresetConfig, TrajectoriesPerRole

    task = load_task("fragment_duplication")
    preset = PresetConfig(name="uneven", trajectories=TrajectoriesPerRole(
        train=3, val=2, id_test=1, ood_test=4))
    counts = defaultdict(int)
    for plan in plan_trajectories(task, preset, seed=0):
        counts[(plan.smiles, plan.split)] += 1
    for molecule in task.molecules():
        if molecule.role == "train":
            expected = {"train": 3, "val": 2, "id_test": 1, "ood_test": 0}
        else:
            expected = {"train": 0, "val": 0, "id_test": 0, "ood_test": 4}
        assert {split: counts[(molecule.smiles, split)] for split in expected} == expected


def test_derived_seeds_are_the_documented_sha256_prefix():
    """Every dataset, split and learning-curve subsample is drawn from derive_seed: changing
    its definition silently changes all of them, so it is pinned to its docstring: the first
    8 bytes of SHA-256 of the parts joined by U+001F, big-endian, shifted to 63 bits."""
    import hashlib

    from gmdbench.tasks.split import derive_seed

    for parts in ((0, "conformers", "CC(=O)O"), ("learning-curve", "ood_test"), (7,)):
        text = "\x1f".join(str(part) for part in parts).encode()
        expected = int.from_bytes(hashlib.sha256(text).digest()[:8], "big") >> 1
        assert derive_seed(*parts) == expected
        assert 0 <= derive_seed(*parts) < 2 ** 63


def test_conformer_and_trajectory_seeds_are_their_documented_derivations():
    """The conformer seed is RDKit's (a signed 32-bit int, so reduced mod 2**31) and one per
    molecule; each trajectory's MD seed is its own derivation: pinned, since every stored
    dataset (and the reference hash) rests on them."""
    task, preset = load_task("fragment_duplication"), load_preset("quick")
    plans = plan_trajectories(task, preset, seed=5)
    for plan in plans:
        assert plan.conformer_seed == derive_seed(5, "conformers", plan.smiles) % 2**31
        split, k = plan.trajectory_id.split(":")[1:]
        assert plan.seed == derive_seed(5, "trajectory", plan.smiles, split, int(k))
    assert len({plan.conformer_seed for plan in plans}) == len({p.smiles for p in plans})


def test_novel_fragments_are_listed_for_ood_molecules_only_and_never_as_absent():
    from gmdbench.tasks.spec import builtin_task_names

    for name in builtin_task_names():
        task = load_task(name)
        novel = novel_fragments(task)
        assert set(novel) == {m.smiles for m in task.molecules() if m.role == "ood"}
        # a fragment an OOD molecule does not have is never "novel", whatever training had
        assert not [note for notes in novel.values() for note in notes if " x0 " in note]
    # a fragment that no molecule of the task has at all (amine among acids)
    import yaml

    from gmdbench.tasks.spec import BUILTIN_DIR, TaskSpec

    spec = yaml.safe_load((BUILTIN_DIR / "fragment_duplication.yaml").read_text())
    spec["fragments"].append("primary_amine")
    novel = novel_fragments(TaskSpec.model_validate(spec))
    assert novel["O=C(O)CC(=O)O"] == ["carboxylic_acid x2 (training max 1)"]


def test_only_train_is_subsampled_and_an_unknown_protocol_is_refused():
    import pytest

    from gmdbench.tasks.split import select_frames

    molecules = ["CC(=O)O"]
    rows = {"train": _rows("train", molecules, 3, 2), "val": _rows("val", molecules, 3, 2),
            "id_test": _rows("id_test", molecules, 3, 2),
            "ood_test": _rows("ood_test", ["O=C(O)CC(=O)O"], 3, 2)}
    assert len(select_frames(rows, "train", train_trajectories=1)) == 2
    for split in ("val", "id_test", "ood_test"):
        assert select_frames(rows, split, train_trajectories=1) == rows[split]
    for protocol in ("spatial", "zzz", ""):
        with pytest.raises(ValueError, match="unknown split protocol"):
            select_frames(rows, "train", protocol)


def test_random_frames_leave_a_molecule_without_id_test_frames_all_in_train():
    from gmdbench.tasks.split import select_frames

    rows = _by_split()
    rows["train"] += _rows("train", ["CCCC(=O)O"], 2, 5)  # no id_test trajectory of its own
    test = select_frames(rows, "id_test", "random-frames")
    train = select_frames(rows, "train", "random-frames")
    assert not [r for r in test if r.smiles == "CCCC(=O)O"]
    assert sum(r.smiles == "CCCC(=O)O" for r in train) == 10


def test_each_molecule_numbers_its_conformers_from_zero_in_plan_order():
    """Trajectory k of a molecule takes conformer k of the n_conformers embedded with one seed:
    the numbering is what makes train, val and id_test start from different geometries."""
    import dataclasses

    import pytest

    plans = plan_trajectories(load_task("fragment_duplication"), load_preset("quick"), seed=0)
    by_molecule = defaultdict(list)
    for plan in plans:
        by_molecule[plan.smiles].append(plan)
    for molecule_plans in by_molecule.values():
        assert [p.conformer_index for p in molecule_plans] == list(range(len(molecule_plans)))
        assert {p.n_conformers for p in molecule_plans} == {len(molecule_plans)}
    with pytest.raises(dataclasses.FrozenInstanceError):
        plans[0].seed = 1  # a plan is a fixed record: nothing downstream may reseed it


def test_split_names_built_at_run_time_select_the_same_frames():
    """Split and protocol names arrive from configs and command lines, not only as literals:
    they are compared by value."""
    from gmdbench.tasks.split import select_frames

    rows = _by_split()
    for split in ("train", "id_test"):
        runtime = "".join(list(split))  # an equal string that is not the interned literal
        protocol = "".join(list("random-frames"))
        assert [id(r) for r in select_frames(rows, runtime, protocol)] == \
            [id(r) for r in select_frames(rows, split, "random-frames")]
        trajectory = "".join(list("trajectory"))
        assert len(select_frames(rows, runtime, trajectory, train_trajectories=1)) == \
            len(select_frames(rows, split, "trajectory", train_trajectories=1))
