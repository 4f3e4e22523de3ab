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
