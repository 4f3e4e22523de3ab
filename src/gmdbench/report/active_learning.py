"""The active-learning report: OOD force MAE against added labels, one curve per rule (mean and
std over seeds); the labels each rule needs to reach a target; and every rule against the
baseline rule and the no-label control *seed by seed* (paired differences of the area under
the OOD curve and of the final OOD error, with confidence intervals, tests and power, decided
by code). Reads the loop's saved curve points; computes nothing from models.

OOD/ID ratios divide by the seed's *round-0* ID error, a fixed yardstick: dividing by each
round's own ID error makes a rule whose ID error stays high look better."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from gmdbench.evaluation.paired import (
    adjust_for_multiplicity,
    first_reaching,
    paired_comparison,
    trapezoid_mean,
)
from gmdbench.files import write_text
from gmdbench.report.html import write_html
from gmdbench.report.uncertainty import write_uncertainty


def aggregate(curve: list[dict]) -> dict[str, list[dict]]:
    """Per rule, per round: labels, mean and std over seeds of ID and OOD force MAE."""
    grouped: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for point in curve:
        grouped[point["rule"]][point["round"]].append(point)
    result = {}
    start = {p["seed"]: p["id_force_mae"] for p in curve if p["round"] == 0}
    for rule, rounds in grouped.items():
        rows = []
        for round_index in sorted(rounds):
            points = rounds[round_index]
            ood = np.array([p["ood_force_mae"] for p in points])
            iid = np.array([p["id_force_mae"] for p in points])
            ratio = ood / iid
            fixed = ood / np.array([start[p["seed"]] for p in points])
            rows.append({"round": round_index, "labels": points[0]["labels"],
                         "seeds": len(points), "ood_mean": float(ood.mean()),
                         "ood_std": float(ood.std(ddof=1)) if len(ood) > 1 else 0.0,
                         "id_mean": float(iid.mean()),
                         "id_std": float(iid.std(ddof=1)) if len(iid) > 1 else 0.0,
                         "ratio_mean": float(ratio.mean()),
                         "ratio_fixed_mean": float(fixed.mean())})
        result[rule] = rows
    return result


def labels_to_target(rows: list[dict], target: float) -> int | None:
    """The fewest added labels at which the seeds' mean OOD force MAE over their round-0 ID
    force MAE is within ``target``; None if no round reached it."""
    return next((row["labels"] for row in rows if row["ratio_fixed_mean"] <= target), None)


def per_seed(curve: list[dict], target: float | None) -> dict[str, dict[int, dict]]:
    """Per rule and seed: the mean OOD force MAE over the rounds (trapezoid), the final OOD
    force MAE, and the labels to reach ``target`` (absolute, eV/A).

    The area runs over rounds, not labels: a rule adds ``batch`` labels a round, so for it the
    two are the same mean, but the no-label control adds none (its label range is 0, and an
    area over it is 0 / 0) while training as much, round for round."""
    grouped: dict[str, dict[int, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for point in curve:
        grouped[point["rule"]][point["seed"]].append(point)
    result: dict[str, dict[int, dict]] = {}
    for rule, seeds in grouped.items():
        result[rule] = {}
        for seed, points in seeds.items():
            points = sorted(points, key=lambda p: p["round"])
            labels = [p["labels"] for p in points]
            ood = [p["ood_force_mae"] for p in points]
            result[rule][seed] = {
                "area": trapezoid_mean([p["round"] for p in points], ood), "final": ood[-1],
                "labels_to_target": None if target is None else
                first_reaching(labels, ood, target)}
    return result


def seeds_with_unshared_round_zero(curve: list[dict]) -> list[int]:
    """Seeds whose rules' round-0 points differ. Within a seed every rule starts from the same
    model (one run id), which is what makes the comparison paired; a study continued on
    another machine retrains round 0 there, and other CPUs round differently."""
    starts: dict[int, set[tuple[str, float]]] = defaultdict(set)
    for point in curve:
        if point["round"] == 0:
            starts[point["seed"]].add((point["run_id"], point["ood_force_mae"]))
    return sorted(seed for seed, found in starts.items() if len(found) > 1)


def comparisons(seeds: dict[str, dict[int, dict]], baseline: str, control: str | None
                ) -> dict[str, dict[str, dict]]:
    """Every rule against the baseline rule and the no-label control, seed by seed, on the
    area under the OOD curve and the final OOD error (negative: the rule is lower). The
    baseline against the control is the control's row against the baseline, not a second
    one; the table is one family, its verdicts adjusted for multiplicity."""
    result: dict[str, dict[str, dict]] = {}
    for rule in sorted(seeds):
        against = [other for other in (baseline, control)
                   if other is not None and other in seeds and other != rule
                   and not (rule == baseline and other == control)]
        result[rule] = {
            f"{metric} vs {other}": paired_comparison(
                {s: v[metric] for s, v in seeds[rule].items()},
                {s: v[metric] for s, v in seeds[other].items()})
            for other in against for metric in ("area", "final")}
        for name, test in result[rule].items():
            # the size a reader weighs a difference against: the other rule's own mean over
            # the same seeds (a 3 meV/A difference means little on a 90 meV/A error)
            metric, other = name.split(" vs ")
            shared = [seeds[other][seed][metric] for seed in test["seeds"]]
            test["other_mean"] = float(np.mean(shared)) if shared else None
    adjust_for_multiplicity([test for tests in result.values() for test in tests.values()])
    return result


def _p(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _adjusted_ci(test: dict) -> str:
    """A row's false-coverage-rate interval with its level, or "-" where it has no test."""
    if test["adjusted_level"] is None:
        return "-"
    low, high = test["adjusted_ci"]
    return f"{test['adjusted_level']:.1%} CI {low:+.4f} to {high:+.4f}"


def paired_section(compared: dict[str, dict[str, dict]], config: dict) -> list[str]:
    """The paired table and its verdicts, with the caveats that belong beside them."""
    family = sum(test["t_test_p"] is not None for tests in compared.values()
                 for test in tests.values())
    lines = ["## Paired over seeds (decided by code)\n",
             "Each rule minus the other, seed by seed: *area* is the mean OOD force MAE over "
             "the rounds (trapezoid, the same as over the label budget for a rule that adds a "
             "batch a round; lower is better, no target needed), *final* the "
             "OOD force MAE after the last round. 95% t interval of the mean difference (each "
             "row's own, not adjusted: a row whose interval excludes 0 can still be not "
             "distinguishable once the table is adjusted), "
             "paired t-test and Wilcoxon signed-rank (6 or more seeds) p-values; *detectable*: "
             "the difference these seeds detect with 80% power; *seeds needed*: paired seeds "
             "that would detect the observed difference with 80% power (each row at 5% on its "
             "own: a lower bound once the table is adjusted; a planning figure for another "
             "study, not a property of this one: it takes the observed difference as the "
             "true one, and observed differences are noisy, those of called rows biased away "
             "from 0, so it can be optimistic); *p adjusted*: the "
             f"t-test p-value adjusted over the table's {family} tested comparisons "
             "(Benjamini-Hochberg), which decides the verdict, so that the table's verdicts "
             "hold a 5% false discovery rate rather than 5% each; *CI adjusted*: the same "
             "interval widened to the false-coverage-rate level of Benjamini and Yekutieli, "
             "1 - max(R, 1) x 5% / m for R rows called of m tested, which excludes 0 exactly "
             "where the verdict is called.\n",
             "| Rule | Compared | Seeds | Mean difference (eV/A) [95% CI] | p (t) | "
             "p adjusted | CI adjusted | p (Wilcoxon) | Detectable | Seeds needed | Verdict |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for rule, tests in compared.items():
        for name, test in tests.items():
            if test["mean_difference"] is None:
                continue
            ci = "-" if test["ci"] is None else \
                f"[{test['ci'][0]:+.4f}, {test['ci'][1]:+.4f}]"
            detectable = "-" if test["detectable_difference"] is None else \
                f"{test['detectable_difference']:.4f}"
            lines.append(f"| {rule} | {name} | {test['n']} | {test['mean_difference']:+.4f} "
                         f"{ci} | {_p(test['t_test_p'])} | {_p(test['adjusted_p'])} | "
                         f"{_adjusted_ci(test)} | {_p(test['wilcoxon_p'])} | "
                         f"{detectable} | {test['seeds_needed'] or '-'} | {test['verdict']} |")
            # every area row, and any row (a final one too) whose verdict the adjustment
            # removed: a reader who sees its interval exclude 0 learns why it is not called
            if name.startswith("area") or test["verdict"] != test["unadjusted_verdict"]:
                metric, other = name.split(" vs ")
                verdicts.append((rule, metric, other, test))
    lines.append("")
    difference = {"area": "mean area difference", "final": "mean final difference"}
    span = {"area": "over the budget", "final": "after the last round"}
    for rule, metric, other, test in verdicts:
        p_values = f"p = {_p(test['t_test_p'])}"
        if test["adjusted_p"] is not None:
            p_values += f", adjusted p = {_p(test['adjusted_p'])}"
        if test["verdict"] != test["unadjusted_verdict"]:
            lines.append(
                f"- {rule} against {other} ({metric}): not distinguishable once the table's "
                f"{family} comparisons are accounted for ({difference[metric]} "
                f"{test['mean_difference']:+.4f} eV/A over {test['n']} paired seeds; its own "
                f"95% CI {test['ci'][0]:+.4f} to {test['ci'][1]:+.4f} excludes 0, its "
                f"adjusted {_adjusted_ci(test)} does not; {p_values}).")
        elif test["verdict"] == "not distinguishable":
            lines.append(
                f"- {rule} against {other} ({metric}): not distinguishable over {test['n']} "
                f"paired seeds ({difference[metric]} {test['mean_difference']:+.4f} eV/A, "
                f"{p_values}); "
                + (f"about {test['seeds_needed']} seeds would detect a difference this size."
                   if test["seeds_needed"] else "the difference is too small to chase."))
        else:
            share = abs(test["mean_difference"]) / test["other_mean"]
            lines.append(f"- {rule} against {other} ({metric}): {test['verdict']} OOD error "
                         f"{span[metric]} by {abs(test['mean_difference']):.4f} eV/A, "
                         f"{share:.1%} of {other}'s {test['other_mean']:.4f} (95% CI "
                         f"{test['ci'][0]:+.4f} to {test['ci'][1]:+.4f}, {test['n']} seeds, "
                         f"{p_values}).")
    deterministic = [rule for rule in compared if rule in ("distance", "farthest_point")]
    if config.get("pool", {}).get("per_seed") is None and deterministic:
        lines.append(f"- Caveat: {', '.join(deterministic)} chose from the whole pool for every "
                     "seed, so they picked the same frames each time; their spread over seeds "
                     "is training noise only (set pool.per_seed to vary the candidates).")
    if config.get("rules") and "no_label" not in config["rules"]:
        lines.append("- Caveat: no no-label control ran, so \"more labels\" is not separated "
                     "from \"more training\" (add no_label to the rules).")
    lines.append("")
    return lines


def plot_curves(aggregated: dict[str, list[dict]], title: str, out: Path,
                target: float | None = None) -> Path:
    figure, (ood_axis, ratio_axis) = plt.subplots(1, 2, figsize=(11, 4.3))
    for rule, rows in sorted(aggregated.items()):
        labels = [row["labels"] for row in rows]
        ood_axis.errorbar(labels, [row["ood_mean"] for row in rows],
                          yerr=[row["ood_std"] for row in rows], marker="o", capsize=3,
                          label=rule)
        ratio_axis.plot(labels, [row.get("ratio_fixed_mean", row["ratio_mean"]) for row in rows],
                        marker="o", label=rule)
    first = next(iter(aggregated.values()))
    ood_axis.axhline(first[0]["id_mean"], color="black", linestyle=":", linewidth=0.8,
                     label="ID error, round 0")
    if target is not None:
        ratio_axis.axhline(target, color="black", linestyle="--", linewidth=0.8,
                           label=f"target {target:g}x")
    ood_axis.set_xlabel("labels added from the OOD pool")
    ood_axis.set_ylabel("OOD force MAE (eV/A), mean ± std over seeds")
    ratio_axis.set_xlabel("labels added from the OOD pool")
    ratio_axis.set_ylabel("OOD force MAE / round-0 ID force MAE (mean over seeds)")
    for axis in (ood_axis, ratio_axis):
        axis.legend(fontsize=8)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def write_active_learning_report(curve: list[dict], config: dict, out_dir: Path,
                                 note: str | None = None) -> Path:
    """active_learning.json (the aggregated curves, labels to target) and report/ (markdown,
    plots, the round-0 uncertainty tables, index.html); returns the json path. ``note``, where
    given (an interim report), heads the markdown and is kept in the json."""
    aggregated = aggregate(curve)
    target = config["target_ratio"]
    ratios = [target, *sorted(set(config.get("other_ratios", [])) - {target}, reverse=True)]
    summary = {"config": config, "target_ratio": target, "curves": aggregated,
               "labels_to_target": {rule: labels_to_target(rows, target)
                                    for rule, rows in aggregated.items()},
               "labels_to_ratio": {f"{ratio:g}": {rule: labels_to_target(rows, ratio)
                                                  for rule, rows in aggregated.items()}
                                   for ratio in ratios}}
    absolute = config.get("target_ood_force_mae")
    seeds = per_seed(curve, absolute)
    control = "no_label" if "no_label" in aggregated else None
    baseline = config.get("baseline_rule", "random")
    compared = comparisons(seeds, baseline, control)
    summary |= {"per_seed": {rule: {str(seed): values for seed, values in by_seed.items()}
                             for rule, by_seed in seeds.items()},
                "comparisons": compared, "baseline_rule": baseline, "control": control}
    if note is not None:
        summary["note"] = note
    unshared = seeds_with_unshared_round_zero(curve)
    summary["seeds_with_unshared_round_0"] = unshared
    path = out_dir / "active_learning.json"
    write_text(path, json.dumps(summary, indent=2))
    report = out_dir / "report"
    report.mkdir(parents=True, exist_ok=True)
    model = config["model"]
    plot_curves(aggregated, f"{model['name']} on {Path(config['task']).stem} "
                f"({Path(config['preset']).stem}): "
                f"{config['batch']} labels per round, update {config['update']}",
                report / "active_learning.png", target=target)
    most = config["rounds"] * config["batch"]
    lines = [f"# Active learning: {config['name']}\n", *([f"{note}\n"] if note else []),
             f"{model['name']} on {Path(config['task']).stem} ({Path(config['preset']).stem} "
             "preset); pool: OOD "
             f"molecules' MD frames from data seed {config['data_seed']} + "
             f"{config['pool']['seed_offset']}, labelled by {config['reference']} when picked; "
             f"OOD test set fixed (never in the pool); seeds "
             f"{', '.join(map(str, config['seeds']))}.\n",
             f"Ratio target: OOD force MAE within {target:g}x the seed's round-0 ID force MAE "
             "(a fixed yardstick; mean over seeds); labels to reach it and, below it, "
             f"stricter ratios ({', '.join(f'{r:g}x' for r in ratios[1:])}), since the target "
             "can already hold before any label is added.\n",
             "| Rule | " + " | ".join(f"Labels to {r:g}x" for r in ratios) + " |",
             "|---|" + "---|" * len(ratios)]
    for rule in sorted(aggregated):
        cells = [rule]
        for ratio in ratios:
            reached = summary["labels_to_ratio"][f"{ratio:g}"][rule]
            cells.append(f"not within {most}" if reached is None else str(reached))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "| Rule | " + " | ".join(
        f"OOD MAE at {row['labels']}" for row in next(iter(aggregated.values()))) + " |",
        "|---|" + "---|" * len(next(iter(aggregated.values())))]
    for rule, rows in sorted(aggregated.items()):
        cells = [rule] + [f"{row['ood_mean']:.4f} ± {row['ood_std']:.4f} "
                          f"({row['ratio_fixed_mean']:.2f}x)" for row in rows]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Cells: OOD force MAE (eV/A) mean ± std over seeds (OOD force MAE / round-0 "
              "ID force MAE).", "", "![curves](active_learning.png)", ""]
    if absolute is not None:
        lines += [f"## Labels to an OOD force MAE of {absolute:g} eV/A, per seed\n",
                  "| Rule | Reached | Labels (median over the seeds that reached it) | "
                  "Round-0 OOD MAE above the target |", "|---|---|---|---|"]
        for rule, by_seed in sorted(seeds.items()):
            reached = [v["labels_to_target"] for v in by_seed.values()
                       if v["labels_to_target"] is not None]
            above = sum(p["ood_force_mae"] > absolute for p in curve
                        if p["rule"] == rule and p["round"] == 0)
            lines.append(f"| {rule} | {len(reached)} of {len(by_seed)} | "
                         f"{np.median(reached):g} | {above} of {len(by_seed)} |" if reached
                         else f"| {rule} | 0 of {len(by_seed)} | - | {above} of "
                         f"{len(by_seed)} |")
        if all(v["labels_to_target"] is None for by_seed in seeds.values()
               for v in by_seed.values()):
            lowest = min(p["ood_force_mae"] for p in curve)
            lines += ["", f"No rule reached {absolute:g} eV/A within {most} labels in any seed "
                      f"(the lowest OOD force MAE of the study is {lowest:.4f} eV/A), so "
                      "labels-to-target cannot rank the rules here; the area under the OOD "
                      "curve below, which needs no target, is the comparison. The target is "
                      "the study's own, set before it ran, and is not moved after the fact."]
        lines.append("")
    lines += paired_section(compared, config)
    if unshared:
        lines += ["", f"Caveat: in seed(s) {', '.join(map(str, unshared))} the rules did not "
                  "start from one round-0 model (their round-0 OOD errors differ: units of one "
                  "seed trained on different machines or dataset rebuilds), so those seeds' "
                  "differences carry round-0 noise too and the pairing is looser there.", ""]
    (report / "active_learning.md").write_text("\n".join(lines))
    write_uncertainty(out_dir / "uncertainty", report)
    for png in sorted((out_dir / "uncertainty").glob("*/uncertainty.png")):
        (report / f"uncertainty_{png.parent.name}.png").write_bytes(png.read_bytes())
    write_html(report, title=f"gmd-bench active learning: {config['name']}")
    return path
