"""Uncertainty figures and the report's table: which signal ranks OOD failures best.

Reads what ``gmd uncertainty`` saved (``uncertainty/*/uncertainty.json``); computes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from gmdbench.files import write_text

COLOURS = {"id_test": "tab:blue", "ood_test": "tab:red"}
LABELS = {"id_test": "ID", "ood_test": "OOD"}


def plot_uncertainty(frames: dict, summary: dict, signals: dict[str, str], out: Path) -> Path:
    """One panel per signal: each test frame's force error against the signal (faint), and the
    mean error in equal-count bins (markers, with the bin's frame count), ID and OOD."""
    figure, axes = plt.subplots(1, len(signals), figsize=(4.6 * len(signals), 4.2),
                                squeeze=False)
    for axis, (name, title) in zip(axes[0], signals.items(), strict=True):
        for split, data in frames.items():
            axis.scatter(data[name], data["force_mae"], s=4, alpha=0.25, color=COLOURS[split])
            binned = summary["splits"][split]["signals"][name]
            rho = binned["spearman"]
            xs = [b["signal"] for b in binned["binned"]]
            ys = [b["error"] for b in binned["binned"]]
            axis.plot(xs, ys, "o-", color=COLOURS[split], label=f"{LABELS[split]} (Spearman "
                      f"{'-' if rho is None else f'{rho:.2f}'})")
            for x, y, b in zip(xs, ys, binned["binned"], strict=True):
                axis.annotate(str(b["count"]), (x, y), fontsize=6, xytext=(2, 3),
                              textcoords="offset points")
        axis.set_xlabel(title)
        axis.set_ylabel("force MAE of the ensemble mean (eV/A)")
        if all(np.all(np.asarray(data[name]) > 0) for data in frames.values()):
            axis.set_xscale("log")
        axis.legend(fontsize=7)
    figure.suptitle(f"{summary['model']} ({summary['regime']}) on {summary['task']}, seeds "
                    f"{', '.join(map(str, summary['seeds']))}: error against uncertainty "
                    "(numbers: frames per bin)", fontsize=9)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def plot_reliability(summary: dict, out: Path) -> Path:
    """Reliability diagram per scored split: observed against nominal coverage of the Gaussian
    interval (raw and recalibrated) and of the Student-t interval for M members; on the
    diagonal is calibrated."""
    calibration = summary["calibration"]
    splits = calibration["splits"]
    figure, axes = plt.subplots(1, len(splits), figsize=(4.4 * len(splits), 4.2), squeeze=False)
    for axis, (split, scores) in zip(axes[0], splits.items(), strict=True):
        levels = [row["level"] for row in scores["reliability"]]
        axis.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":")
        axis.plot(levels, [row["gaussian"] for row in scores["reliability"]], "o-",
                  label="Gaussian, raw sigma")
        axis.plot(levels, [row["student_t"] for row in scores["reliability"]], "s-",
                  label=f"Student-t, M = {calibration['members']}")
        axis.plot(levels, [row["gaussian"] for row in scores["reliability_recalibrated"]],
                  "^-", label=f"Gaussian, sigma x {calibration['variance_scale']:.2f} "
                  "(fitted on held-out ID)")
        axis.set_xlabel("nominal coverage")
        axis.set_ylabel("observed fraction of force components inside")
        axis.set_title(f"{calibration['scored_on'][split]} (NLL {scores['nll']:.2f} -> "
                       f"{scores['nll_recalibrated']:.2f})", fontsize=8)
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.legend(fontsize=7)
    figure.suptitle(f"{summary['model']} ({summary['regime']}) on {summary['task']}: "
                    "reliability of the ensemble's force sigmas", fontsize=9)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110)
    plt.close(figure)
    return out


def plot_reliability_overview(summaries: list[dict], out: Path) -> Path | None:
    """Every configuration's reliability on ood_test in one figure: raw Gaussian sigmas, the
    Student-t interval for its M members, and sigmas rescaled on held-out ID frames."""
    summaries = [s for s in summaries if s.get("calibration")]
    if not summaries:
        return None
    panels = (("reliability", "gaussian", "Gaussian interval, raw sigma"),
              ("reliability", "student_t", "Student-t interval for M members"),
              ("reliability_recalibrated", "gaussian", "Gaussian, sigma rescaled on held-out ID"),
              ("reliability_conformal", "observed", "split-conformal, fitted on held-out ID"))
    figure, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4))
    for axis, (block, column, title) in zip(axes, panels, strict=True):
        axis.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":")
        for summary in summaries:
            rows = summary["calibration"]["splits"]["ood_test"].get(block, [])
            variant = _variant(summary, summaries)
            axis.plot([r["level"] for r in rows], [r[column] for r in rows], marker=".",
                      linewidth=1, label=summary["model"] + (f" ({variant})" if variant else ""))
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("nominal coverage")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
    axes[0].set_ylabel("observed fraction of force components inside")
    axes[-1].legend(fontsize=6, loc="lower right")
    figure.suptitle("Reliability of each configuration's ensemble force sigmas on OOD frames "
                    "(dotted: calibrated)", fontsize=9)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def _rho(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _variant(summary: dict, summaries: list[dict]) -> str:
    """What sets this configuration apart from the others of its model and regime (e.g.
    ``model_options.router=learned``); empty when it is the only one."""
    siblings = [s for s in summaries if s["model"] == summary["model"]
                and s["regime"] == summary["regime"] and s is not summary]
    mine = summary.get("configuration", {})
    differing = sorted(key for key in mine
                       if any(s.get("configuration", {}).get(key) != mine[key] for s in siblings))
    return ", ".join(f"{key.rsplit('.', 1)[-1]}={mine[key].strip(chr(34))}"
                     for key in differing if key not in ("dataset_path", "run_id"))


def _signal_table(summaries: list[dict]) -> list[str]:
    """OOD ranking skill per configuration and signal: pooled, within molecule, and the
    molecule-only baselines beside them."""
    lines = ["| Model | Regime | Seeds | Signal | ρ ID pooled | ρ OOD pooled | ρ OOD within "
             "molecule, median [IQR] (molecules) |", "|---|---|---|---|---|---|---|"]
    for summary in summaries:
        variant = _variant(summary, summaries)
        head = [summary["model"] + (f" ({variant})" if variant else ""), summary["regime"],
                ", ".join(str(seed) for seed in summary["seeds"])]
        for name in summary["signals"]:
            within = summary["splits"]["ood_test"]["signals"][name].get("within_molecule")
            cell = "-" if not within or within["median"] is None else (
                f"{within['median']:.2f} [{within['quartiles'][0]:.2f}, "
                f"{within['quartiles'][1]:.2f}] ({within['groups']})")
            lines.append("| " + " | ".join([*head, name, *(
                _rho(summary["splits"][split]["signals"][name]["spearman"])
                for split in ("id_test", "ood_test")), cell]) + " |")
            head = ["", "", ""]
        for name in summary.get("baselines", {}):
            lines.append("| " + " | ".join([*head, f"*baseline: {name}*", *(
                _rho(summary["splits"][split]["baselines"][name]["spearman"])
                for split in ("id_test", "ood_test")), "0 by construction"]) + " |")
    return lines


def _calibration_table(summaries: list[dict]) -> list[str]:
    """Observed coverage, ENCE and NLL beside a calibrated M-member ensemble's and after
    recalibration fitted on held-out ID frames."""
    lines = ["| Model | Regime | Seeds | Split | within 1σ / 2σ | calibrated M-ensemble | "
             "variance scale | recalibrated 1σ / 2σ | conformal 68% / 95% | ENCE (calibrated "
             "M) -> recalibrated | NLL -> recalibrated |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for summary in summaries:
        calibration = summary.get("calibration")
        if not calibration:
            continue
        for split, scores in calibration["splits"].items():
            variant = _variant(summary, summaries)
            lines.append("| " + " | ".join([
                summary["model"] + (f" ({variant})" if variant else ""), summary["regime"],
                ", ".join(str(seed) for seed in summary["seeds"]),
                calibration["scored_on"][split],
                f"{scores['within_1_sigma']:.2f} / {scores['within_2_sigma']:.2f}",
                f"{calibration['expected_within_1_sigma']:.2f} / "
                f"{calibration['expected_within_2_sigma']:.2f}",
                f"{calibration['variance_scale']:.2f}",
                f"{scores['recalibrated_within_1_sigma']:.2f} / "
                f"{scores['recalibrated_within_2_sigma']:.2f}",
                f"{scores['conformal_within_0.68']:.2f} / {scores['conformal_within_0.95']:.2f}",
                f"{_rho(scores['ence'])} ({_rho(scores['ence_calibrated_ensemble'])}) -> "
                f"{_rho(scores['ence_recalibrated'])}",
                f"{scores['nll']:.2f} -> {scores['nll_recalibrated']:.2f}"]) + " |")
    return lines


def _span(values: list[float]) -> str:
    """A range of values as the report prints it: "0.33 to 0.65", or one value."""
    if not values:
        return "-"
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return low if low == high else f"{low} to {high}"


def sign_test(count: int, total: int) -> float:
    """Two-sided sign test: how often a fair coin lands ``count`` or a count as far from half
    in ``total`` throws (scipy's exact binomial test), so "5 of 13" reads as chance and
    "13 of 13" does not."""
    return float(stats.binomtest(count, total, 0.5).pvalue)


def _sign(count: int, total: int) -> str:
    return f"sign test p = {sign_test(count, total):.2g}" if total else "no sign test"


def _per_molecule_sign(within: list[dict]) -> str:
    """How many (configuration, molecule) pairs rank frames the right way round at all
    (Spearman above 0), and the worst one: a median hides a molecule where the signal points
    the wrong way. Empty where the summaries hold no per-molecule values."""
    values = [rho for w in within for rho in (w.get("per_group") or {}).values()
              if rho is not None]
    if not values:
        return ""
    positive = sum(rho > 0 for rho in values)
    return (f"; above 0 in {positive} of {len(values)} (configuration, molecule) pairs, the "
            f"lowest {min(values):.2f}")


def uncertainty_findings(summaries: list[dict], signal: str = "ensemble_force_std"
                         ) -> list[str]:
    """The uncertainty findings, decided from the summaries alone (every number in them is
    computed here, none typed in): what a signal adds beyond molecule identity, how the worst
    atom compares with the mean, and calibration against an M-member ensemble's yardstick and
    after recalibration on held-out ID frames."""
    scored = [s for s in summaries if s.get("calibration") and s.get("baselines")
              and signal in s["signals"]]
    if not scored:
        return []
    ood = [s["splits"]["ood_test"] for s in scored]
    # (pooled rho, best baseline rho) where both are defined (a one-molecule split has none)
    pairs = [(o["signals"][signal]["spearman"],
              max((b["spearman"] for b in o["baselines"].values() if b["spearman"] is not None),
                  default=None)) for o in ood]
    pairs = [(p, b) for p, b in pairs if p is not None and b is not None]
    within = [o["signals"][signal]["within_molecule"] for o in ood]
    medians = [w["median"] for w in within if w["median"] is not None]
    molecules = sorted({w["groups"] for w in within})
    beats = sum(p > b for p, b in pairs)
    lines = [f"- **Ranking OOD frames is mostly ranking molecules.** Over {len(scored)} "
             f"configurations the {signal} reaches a pooled OOD Spearman of "
             f"{_span([p for p, _ in pairs])}; a molecule-only baseline (constant within a "
             f"molecule) reaches {_span([b for _, b in pairs])}, and the signal beats the "
             f"better baseline in {beats} of {len(pairs)} ({_sign(beats, len(pairs))}; the "
             "sign tests here count configurations, which share test frames and "
             "architectures, so their p-values are optimistic). Within a "
             f"molecule its median Spearman is {_span(medians)} (over "
             f"{'/'.join(map(str, molecules))} molecules each, frames of one molecule being "
             "correlated MD snapshots)" + _per_molecule_sign(within) + ": that, not the pooled "
             "number, is what it adds beyond knowing the molecule."]
    if all("force_deviation_max" in o["signals"] for o in ood):
        worst = [o["signals"]["force_deviation_max"]["within_molecule"]["median"] for o in ood]
        better = sum(w is not None and m is not None and w > m
                     for w, m in zip(worst, [x["median"] for x in within], strict=True))
        text = (f"- **Worst atom against mean atom.** Max over atoms of the force deviation "
                f"(the DeePMD/FLARE aggregation) ranks frames within a molecule better than the "
                f"mean spread in {better} of {len(scored)} configurations "
                f"({_sign(better, len(scored))}; medians "
                f"{_span([w for w in worst if w is not None])}) when scored against the frame's "
                "mean force error")
        if all("worst_atom" in o for o in ood):
            pairs = [(o["worst_atom"]["force_deviation_max"]["within_molecule"]["median"],
                      o["worst_atom"][signal]["within_molecule"]["median"]) for o in ood]
            pairs = [(w, m) for w, m in pairs if w is not None and m is not None]
            wins = sum(w > m for w, m in pairs)
            text += (f"; against the frame's worst-atom error, in {wins} of {len(pairs)} "
                     f"({_sign(wins, len(pairs))}; medians {_span([w for w, _ in pairs])} against "
                     f"{_span([m for _, m in pairs])})")
        lines.append(text + ".")
    if all("ensemble_energy_std" in o["signals"] for o in ood):
        energy = [o["signals"]["ensemble_energy_std"]["within_molecule"]["median"] for o in ood]
        lines.append(
            "- **The energy spread does not rank frames**: within a molecule its median "
            f"Spearman with the force error is {_span([e for e in energy if e is not None])}.")
    calibrations = [s["calibration"] for s in scored]
    members = sorted({c["members"] for c in calibrations})
    raw = [c["splits"]["ood_test"]["within_1_sigma"] for c in calibrations]
    expected = [c["expected_within_1_sigma"] for c in calibrations]
    over_confident = sum(r < e for r, e in zip(raw, expected, strict=True))
    recalibrated = [c["splits"]["ood_test"]["recalibrated_within_1_sigma"] for c in calibrations]
    conformal_ood = [c["splits"]["ood_test"]["conformal_within_0.68"] for c in calibrations]
    conformal_id = [c["splits"]["id_test"]["conformal_within_0.68"] for c in calibrations]
    conformal_95 = [c["splits"]["ood_test"]["conformal_within_0.95"] for c in calibrations]
    short = sum(c < 0.68 for c in conformal_ood)
    lines += [
        f"- **Raw sigmas are over-confident.** Within 1 sigma on OOD: {_span(raw)} of force "
        f"components, where a calibrated {'/'.join(map(str, members))}-member ensemble covers "
        f"{_span(expected)} (not 0.68); below that in {over_confident} of {len(scored)} "
        f"({_sign(over_confident, len(scored))}).",
        f"- **One variance scale cannot fix it; conformal intervals nearly do, in "
        f"distribution.** The scale fitted on held-out ID frames "
        f"({_span([c['variance_scale'] for c in calibrations])}) over-covers OOD at 1 sigma "
        f"({_span(recalibrated)} against 0.68): the normalised errors are heavy-tailed, and the "
        "likelihood-fitted scale is set by the tails. Split-conformal 68% intervals fitted on "
        f"the same ID frames cover {_span(conformal_id)} of the other ID half and "
        f"{_span(conformal_ood)} of OOD ({short} of {len(scored)} short of 0.68, "
        f"{_sign(short, len(scored))}; 95% intervals "
        f"{_span(conformal_95)} on OOD): the guarantee holds for exchangeable frames, and OOD "
        "frames are not."]
    return lines


def write_uncertainty(folder: Path, out_dir: Path, name: str = "uncertainty.md") -> list[Path]:
    """uncertainty.md: per task, each configuration's ranking skill per signal (pooled, within
    molecule, beside molecule-only baselines) and its calibration against a calibrated
    M-member ensemble's yardsticks and after recalibration."""
    saved = sorted(Path(folder).glob("*/uncertainty.json"))
    if not saved:
        return []
    summaries = [json.loads(path.read_text()) for path in saved]
    lines = ["# Uncertainty: does a model know when it is out of distribution?\n",
             "Signals: the spread of the seeds' predictions (a deep ensemble, no extra "
             "training; per frame the mean or the max over atoms, absolute or relative to the "
             "force as DeePMD's model deviation) and, where the dataset was at hand, the SOAP "
             "distance from the train split. Each is scored by its Spearman rank correlation "
             "with the ensemble-mean force MAE per test frame: pooled over all frames, and "
             "within each molecule (median over molecules). The pooled number mostly says "
             "*which molecule* is hard: the *baseline* rows are constant within a molecule "
             "and reach that much by molecule identity alone.\n",
             "Calibration, per force component: with M members sigma is a sample standard "
             "deviation and a perfectly calibrated ensemble covers P(|t_{M-1}| <= "
             "k/sqrt(1+1/M)) within k sigma (0.52 / 0.78 for M = 3, not 0.68 / 0.95); ENCE "
             "in brackets is what a calibrated M-member ensemble scores (simulated with the "
             "same sigmas). Recalibration (a variance scale, and split-conformal intervals) "
             "is fitted on half of id_test (every second trajectory of each molecule, or the "
             "later half in time of each trajectory where a molecule has one) and scored on the "
             "other half and on ood_test; conformal coverage is guaranteed only on frames "
             "exchangeable with the fitting ones, which OOD frames are not.\n"]
    findings = uncertainty_findings(summaries)
    if findings:
        lines += ["## Findings (decided by code from the summaries below)\n", *findings, ""]
        if (Path(folder) / "reliability.png").exists() or name == "README.md":
            lines += ["![reliability](reliability.png)\n",
                      "*Figure: observed against nominal coverage of every configuration's "
                      "force sigmas on ood_test: raw Gaussian, Student-t for M members, "
                      "rescaled on held-out ID frames, split-conformal; dotted: calibrated.*\n"]
    for task in sorted({s["task"] for s in summaries}):
        of_task = [s for s in summaries if s["task"] == task]
        lines += [f"## {task}\n", "### Ranking skill\n", *_signal_table(of_task), ""]
        calibration = _calibration_table(of_task)
        if len(calibration) > 2:
            lines += ["### Calibration of the force sigmas\n", *calibration, ""]
    write_text(out_dir / name, "\n".join(lines))
    return [out_dir / name]
