"""The reference models across tasks: each task's verdict follows the rows it is given."""

from __future__ import annotations

from gmdbench.report.across_tasks import across_tasks
from gmdbench.report.tables import TableRow


def _row(task: str, model: str, iid: float, ood: float, energy_ood: float,
         seeds: int = 1) -> TableRow:
    row = TableRow(task, model, "scratch", True, "GFN2-xTB", "-", e0="isolated")
    row.seeds = list(range(seeds))
    row.statuses = ["capped"] * seeds
    for _ in range(seeds):
        row.values[("force_mae", "id_test")].append(iid)
        row.values[("force_mae", "ood_test")].append(ood)
        row.values[("energy_mae", "id_test")].append(0.05)
        row.values[("energy_mae", "ood_test")].append(energy_ood)
    return row


def test_each_task_names_its_own_best_model_and_energy_failures():
    rows = [_row("fragment_duplication", "mace", 0.01, 0.03, 4.5, seeds=3),
            _row("fragment_duplication", "schnet", 0.03, 0.07, 5.2, seeds=3),
            _row("fragment_duplication", "painn", 0.01, 0.04, 6.0, seeds=3),  # not run elsewhere
            _row("chain_extension", "mace", 0.01, 0.05, 0.3),
            _row("chain_extension", "schnet", 0.03, 0.04, 2.0)]
    text = "\n".join(across_tasks(rows, "fragment_duplication",
                                  ["chain_extension", "fragment_combination"]))
    assert "painn" not in text  # only the models the other tasks ran are shown
    assert "| fragment_duplication | mace | 3 | 3 capped | 0.0100 ± 0.0000 |" in text
    assert "| chain_extension | schnet | 1 | 1 capped | 0.0300 | 0.0400 | 1.33 |" in text
    assert ("- **fragment_duplication**: lowest OOD force MAE mace (0.0300 ± 0.0000 eV/A); "
            "lowest OOD/ID schnet (2.33 ± 0.00); OOD energy fails") in text
    assert "for 2 of 2." in text.split("**fragment_duplication**")[1].split("\n")[0]
    chain = text.split("**chain_extension**")[1].split("\n")[0]
    assert "lowest OOD force MAE schnet (0.0400 eV/A)" in chain
    assert "for 1 of 2." in chain  # MACE's 0.3 eV is not a failure
    assert "fragment_combination" not in text  # nothing archived there yet


def test_nothing_archived_says_so():
    rows = [_row("fragment_duplication", "mace", 0.01, 0.03, 4.5)]
    assert across_tasks(rows, "fragment_duplication", ["chain_extension"]) == \
        ["No run of these tasks has been archived yet."]
