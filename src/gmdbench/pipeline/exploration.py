"""``gmd explore RUN... --smiles S``: model-driven exploration of a user's own molecules.

The seeds of one configuration (a deep ensemble) drive Langevin MD of each molecule from an
RDKit conformer (``active/exploration.py``); frames inside the trust window are labelled by the
reference method when kept, and handed on: ``candidates.extxyz`` (the labelled frames, for any
tool), and with ``--base DATA`` the next round's training data ``data.db`` (the base dataset
plus the candidates in its train split; train on it with ``gmd train --data``).
``exploration.json`` records, per molecule, where the run stopped and why, and every sampled
deviation, so a reader sees the trust window at work.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from gmdbench.active.exploration import ExplorationSettings, TrustWindow, explore
from gmdbench.chem.molecules import atomic_numbers_of, canonical_smiles, embed_conformers
from gmdbench.data.extend import LabelledFrame, extended_dataset
from gmdbench.errors import GmdError
from gmdbench.files import atomic_path, write_text
from gmdbench.pipeline.uncertainty import ensemble_configuration
from gmdbench.reference.registry import ReferenceConfig, label_with_retries, resolve_reference
from gmdbench.runner.runs import run_calculator


def _model_elements(run_dir: Path) -> set[int]:
    return set(json.loads((Path(run_dir) / "model_build.json").read_text())["elements"])


def explore_molecules(run_dirs: list[Path], smiles: list[str], out_dir: Path,
                      window: TrustWindow, settings: ExplorationSettings,
                      reference: str = "gfn2-xtb", seed: int = 0, base: Path | None = None,
                      device: str = "cpu", on_event: Callable[[str], None] | None = None
                      ) -> dict:
    """Explore each molecule with the runs' ensemble; label and hand on the candidates (see the
    module docstring). Returns the summary written to ``exploration.json``."""
    say = on_event or (lambda message: None)
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    runs, _ = ensemble_configuration(run_dirs)
    known = _model_elements(run_dirs[0])
    for molecule in smiles:
        unknown = sorted(set(atomic_numbers_of(molecule).tolist()) - known)
        if unknown:
            raise GmdError(f"molecule {molecule}: elements {unknown} are unknown to the models "
                           f"of {run_dirs[0]} (trained on {sorted(known)})")
    members = [run_calculator(run_dir, device=device) for run_dir in run_dirs]
    method = resolve_reference(ReferenceConfig(name=reference))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labelled: list[LabelledFrame] = []
    molecules = []
    for index, molecule in enumerate(smiles):
        conformer = embed_conformers(molecule, 1, seed)[0]
        result = explore(conformer, members, window, settings, seed=seed * 1000 + index)
        say(f"{molecule}: {result.steps_run} steps, stopped by {result.stopped_by}, "
            f"{len(result.candidates)} candidate(s); labelling with {reference}")
        for frame in result.candidates:
            energy, forces = label_with_retries(frame, method)
            labelled.append(LabelledFrame(
                frame.numbers, frame.get_positions(), energy, forces,
                {"smiles": canonical_smiles(molecule), "molecule_id": f"explore-{index}",
                 "trajectory_id": f"explore-{seed}-{index}", "frame": int(frame.info["step"]),
                 "split": "train", "temperature": settings.temperature_K, "seed": seed,
                 "level_of_theory": reference, "sampler": "model-driven-md",
                 "source": "exploration", "deviation": float(frame.info["deviation"])}))
        molecules.append({"smiles": molecule, "steps_run": result.steps_run,
                          "stopped_by": result.stopped_by, "candidates": len(result.candidates),
                          "sampled": [{"step": step, "deviation": deviation}
                                      for step, deviation in result.sampled]})
    _write_candidates(labelled, out_dir / "candidates.extxyz")
    summary = {"runs": [run.run_id for run in runs], "run_dirs": [str(d) for d in run_dirs],
               "window": window.model_dump(), "md": settings.model_dump(),
               "reference": reference, "seed": seed, "molecules": molecules,
               "candidates": len(labelled), "candidates_file": "candidates.extxyz"}
    if base is not None:
        data = extended_dataset(base, labelled, out_dir / "data.db")
        summary["next_round_data"] = data.name
        say(f"next round's training data: {data} ({len(labelled)} frames added to train)")
    write_text(out_dir / "exploration.json", json.dumps(summary, indent=2))
    return summary


def _write_candidates(frames: list[LabelledFrame], path: Path) -> None:
    """The labelled candidates as extended XYZ (energy and forces per frame), atomically."""
    if not frames:  # nothing inside the window: an empty file says so
        write_text(path, "")
        return
    images = []
    for frame in frames:
        atoms = Atoms(frame.numbers, frame.positions)
        atoms.calc = SinglePointCalculator(atoms, energy=frame.energy,
                                           forces=np.asarray(frame.forces))
        atoms.info.update({k: v for k, v in frame.keys.items() if k != "split"})
        images.append(atoms)
    with atomic_path(path) as temporary:
        write(temporary, images, format="extxyz")
