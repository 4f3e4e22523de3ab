"""The report of a probe suite: barrier-error tables (per path and per class), self-consistent
NEB, sliding, equilibrium and MD-stability tables, NEB profiles, sliding curves, CKA heatmap."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from gmdbench.report.html import write_html


def _f(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _plot_paths(results: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    paths = {}
    for label, model in results.items():
        for record in model["fixed_path"]:
            paths.setdefault(record["path"], {"class": record["path_class"],
                                              "reference": record["reference_relative"],
                                              "models": {}})["models"][label] = \
                record["model_relative"]
    for name, path in paths.items():
        figure, axis = plt.subplots(figsize=(6, 4))
        axis.plot(path["reference"], "k-o", lw=2, label="reference")
        for label, energies in path["models"].items():
            axis.plot(energies, "--o", ms=3, label=label)
        axis.set_xlabel("image")
        axis.set_ylabel("E - E(image 0) (eV)")
        axis.set_title(f"fixed path {name} ({path['class'] or 'unlabelled'})", fontsize=10)
        axis.legend(fontsize=7)
        figure.tight_layout()
        target = out_dir / f"neb_profile_{name}.png"
        figure.savefig(target, dpi=120)
        plt.close(figure)
        written.append(target)
    sliding = {label: model["sliding"] for label, model in results.items() if "sliding" in model}
    if sliding:
        figure, axis = plt.subplots(figsize=(6, 4))
        first = next(iter(sliding.values()))
        if first.get("reference_relative") is not None:
            axis.plot(first["shifts"], first["reference_relative"], "k-o", lw=2,
                      label="reference")
        for label, record in sliding.items():
            axis.plot(record["shifts"], record["model_relative"], "--o", ms=3, label=label)
        axis.set_xlabel("shift of the block (A)")
        axis.set_ylabel("E - E(start) (eV)")
        axis.set_title("interlayer sliding", fontsize=10)
        axis.legend(fontsize=7)
        figure.tight_layout()
        target = out_dir / "sliding.png"
        figure.savefig(target, dpi=120)
        plt.close(figure)
        written.append(target)
    return written


def write_probe_report(results_path: Path, out_dir: Path) -> list[Path]:
    summary = json.loads(Path(results_path).read_text())
    results = summary["results"]
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"# Probe suite {summary['suite']}\n",
             f"Reference: {summary['level_of_theory']}. Energies relative to the first image; "
             "barrier = max_i E_i - E_0; errors are model minus reference (eV).\n",
             "## Fixed path: barrier error per path\n",
             "| model | path | class | reference barrier | model barrier | barrier error | "
             "profile MAE |", "|---|---|---|---|---|---|---|"]
    for label, model in results.items():
        for r in model["fixed_path"]:
            lines.append(f"| {label} | {r['path']} | {r['path_class'] or 'unlabelled'} | "
                         f"{_f(r['reference_barrier'])} | {_f(r['model_barrier'])} | "
                         f"{_f(r['barrier_error'])} | {_f(r['profile_mae'])} |")
    lines += ["\n## Fixed path: barrier error by class (mean ± std over paths)\n",
              "| model | class | paths | barrier error | mean abs. barrier error |",
              "|---|---|---|---|---|"]
    for label, model in results.items():
        for name, c in model.get("fixed_path_by_class", {}).items():
            lines.append(f"| {label} | {name} | {c['paths']} | {_f(c['barrier_error_mean'])} ± "
                         f"{_f(c['barrier_error_std'])} | {_f(c['barrier_abs_error_mean'])} |")
    if any(model.get("neb") for model in results.values()):
        lines += ["\n## Self-consistent NEB (climbing image, the model's own path)\n",
                  "Reference barrier: of the reference's NEB path ('-' for straight-line paths, "
                  "which are not minimum-energy paths: compare the rescored barrier and the "
                  "reference's own row).\n",
                  "| model | path | converged | steps | exploded | model barrier | "
                  "reference barrier | model path rescored by reference | min distance (A) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for label, model in results.items():
            for name, n in model.get("neb", {}).items():
                exploded = f"yes: {n['explosion']}" if n["exploded"] else "no"
                lines.append(f"| {label} | {name} | {'yes' if n['converged'] else 'no'} | "
                             f"{n['steps']} | {exploded} | {_f(n['model_barrier'])} | "
                             f"{_f(n['reference_barrier'])} | {_f(n['rescored_barrier'])} | "
                             f"{_f(n['min_distance'], 2)} |")
    if any("sliding" in model for model in results.values()):
        lines += ["\n## Sliding\n", "| model | barrier | reference barrier | barrier error | "
                  "profile MAE | periodicity error E(end) - E(start) |",
                  "|---|---|---|---|---|---|"]
        for label, model in results.items():
            if "sliding" in model:
                s = model["sliding"]
                lines.append(f"| {label} | {_f(s['model_barrier'], 4)} | "
                             f"{_f(s['reference_barrier'], 4)} | {_f(s['barrier_error'], 4)} | "
                             f"{_f(s['profile_mae'], 4)} | {_f(s['periodicity_error'], 6)} |")
    if any("equilibrium" in model for model in results.values()):
        lines += ["\n## Equilibrium: held-out reference frames\n",
                  "| model | force MAE (eV/A) | cosine | energy MAE (eV/atom) |",
                  "|---|---|---|---|"]
        for label, model in results.items():
            if "equilibrium" in model:
                e = model["equilibrium"]
                lines.append(f"| {label} | {_f(e['force_mae'], 4)} | {_f(e['force_cosine'], 4)} "
                             f"| {_f(e['energy_mae_per_atom'], 4)} |")
        if any(model.get("equilibrium", {}).get("per_condition") for model in results.values()):
            lines += ["\nPer held-out condition (each test file, or the OOD temperature's "
                      "MD): a pooled error hides the condition a model fails on.\n",
                      "| model | condition | frames | force MAE (eV/A) | energy MAE (eV/atom) |",
                      "|---|---|---|---|---|"]
            for label, model in results.items():
                for condition, e in model.get("equilibrium", {}).get(
                        "per_condition", {}).items():
                    lines.append(f"| {label} | {condition} | {e['frames']} | "
                                 f"{_f(e['force_mae'], 4)} | {_f(e['energy_mae_per_atom'], 4)} |")
    if any("md" in model for model in results.values()):
        lines += ["\n## MD stability (NVT Langevin)\n",
                  "| model | exploded | steps | mean T (K) | pressure drift (GPa/ps) | "
                  "min distance (A) |", "|---|---|---|---|---|---|"]
        for label, model in results.items():
            if "md" in model:
                m = model["md"]
                exploded = f"yes: {m['explosion']}" if m["exploded"] else "no"
                lines.append(f"| {label} | {exploded} | {m['steps_completed']} | "
                             f"{_f(m['mean_temperature_K'], 0)} | "
                             f"{_f(m['pressure_drift_GPa_per_ps'], 3)} | "
                             f"{_f(m['min_distance'], 2)} |")
    written = _plot_paths(results, out_dir)
    representations = summary.get("representations")
    if representations:
        lines += ["\n## Representations (node features on the path images' atoms)\n",
                  "![CKA](cka.png)\n", "![projections](projections.png)\n"]
        source = Path(results_path).parent / "representations"
        for name in ("cka.png", "projections.png"):
            if (source / name).exists():
                shutil.copyfile(source / name, out_dir / name)
                written.append(out_dir / name)
    lines += ["\n## Figures\n"] + [f"![{p.stem}]({p.name})" for p in written
                                    if p.name not in ("cka.png", "projections.png")]
    report = out_dir / "probes.md"
    report.write_text("\n".join(lines) + "\n")

    return [report, *written, write_html(out_dir, f"gmd-bench probes: {summary['suite']}")]
