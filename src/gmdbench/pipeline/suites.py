"""``gmd probe run``: a probe suite end to end: training data, models through the harness
(cached runs), every probe with every model (each result cached as soon as it is computed), the
report."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from gmdbench.data.store import DatasetStore
from gmdbench.errors import GmdError
from gmdbench.files import write_text
from gmdbench.models.base import DTYPES, resolve_device
from gmdbench.models.calculator import MLIPCalculator
from gmdbench.pipeline.representations import path_representations
from gmdbench.pipeline.runs import train_and_evaluate
from gmdbench.probes.data import (
    GeneratedFrames,
    generated_dataset,
    resolve_data_file,
    stored_dataset,
)
from gmdbench.probes.equilibrium import equilibrium_errors
from gmdbench.probes.md import md_stability
from gmdbench.probes.neb import (
    FixedPathResult,
    errors_by_class,
    fixed_path,
    linear_path,
    reference_neb_path,
    self_consistent_neb,
    single_points,
)
from gmdbench.probes.sliding import sliding_images, sliding_probe
from gmdbench.probes.suite import (
    CachedJSON,
    PathSpec,
    ProbeSuite,
    build_system,
    call_dotted,
    check_inputs,
    path_energies,
    reference_factory,
    suite_hash,
)
from gmdbench.reference.registry import ReferenceConfig, resolve_reference
from gmdbench.report.probes import write_probe_report
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import load_potential, read_run_config, run_config

REFERENCE_LABEL = "reference"


def _key(*parts) -> str:
    """A short hash of the settings a cached result depends on."""
    text = json.dumps([p.model_dump(mode="json") if hasattr(p, "model_dump") else p
                       for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _say(on_event: Callable[[str], None] | None, message: str) -> None:
    if on_event:
        on_event(message)


def training_dataset(suite: ProbeSuite, root: Path | None, out: Path,
                     on_event: Callable[[str], None] | None = None) -> Path:
    data = out / "data" / f"{suite.name}-{suite_hash(suite)}.db"
    data.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"probe_suite": suite.name, "training_data": suite.training_data.model_dump(),
                "level_of_theory": _level_of_theory(suite)}
    if isinstance(suite.training_data, GeneratedFrames):
        reference = reference_factory(suite)
        system = build_system(suite.system, root)
        if suite.reference is not None:  # E0 of scratch models: the method's isolated atoms
            metadata["isolated_atom_energies"] = resolve_reference(ReferenceConfig(
                name=suite.reference)).isolated_atom_energies(set(system.get_chemical_symbols()))
        return generated_dataset(suite.training_data, system, reference, data, metadata,
                                 progress=lambda m: _say(on_event, m))
    return stored_dataset(suite.training_data, root, data, metadata)


def _level_of_theory(suite: ProbeSuite) -> str:
    if suite.reference is None:
        return "stored reference data"
    return resolve_reference(ReferenceConfig(name=suite.reference)).level_of_theory


def train_models(suite: ProbeSuite, data: Path, out: Path,
                 on_event: Callable[[str], None] | None = None, device: str = "cpu"
                 ) -> dict[str, Path]:
    """Each model x regime through the harness (cached by run hash), evaluated into results."""
    results = ResultsStore(out / "results.db")
    dataset_hash = DatasetStore(data).content_hash()
    planned = [(run_config(entry, suite.name, entry.seed, dataset_hash), data)
               for entry in suite.models]
    run_dirs = train_and_evaluate(planned, out / "runs", results, on_event=on_event,
                                  reuse_evaluations=True, device=device)
    return {entry.label: run_dirs[run.run_id]
            for entry, (run, _) in zip(suite.models, planned, strict=True)}


def reference_paths(suite: ProbeSuite, root: Path | None, out: Path
                    ) -> dict[str, tuple[list[Atoms], np.ndarray, PathSpec]]:
    """Images and reference energies of every path (computed ones cached as extxyz)."""
    folder = out / "paths"
    folder.mkdir(parents=True, exist_ok=True)
    reference = reference_factory(suite)
    system = build_system(suite.system, root) if any(p.endpoints for p in suite.paths) else None
    paths = {}
    for spec in suite.paths:
        if spec.file:
            file = Path(spec.file) if Path(spec.file).is_absolute() or root is None \
                else root / spec.file
            if not file.exists():
                raise GmdError(f"path file {file} does not exist")
            images = ase.io.read(file, index=":")
            energies = path_energies(images, spec.energy_key)
        else:
            cached = folder / f"{spec.name}.extxyz"
            if cached.exists():
                images = ase.io.read(cached, index=":")
                energies = np.array([image.info["reference_energy"] for image in images])
            else:
                initial, final = call_dotted(spec.endpoints, system)
                if spec.source == "neb":
                    images, energies = reference_neb_path(initial, final, reference, suite.neb
                                                          .model_copy(update={"images":
                                                                              spec.images}))
                else:
                    images = linear_path(initial, final, spec.images)
                    energies = single_points(images, reference())
                for image, energy in zip(images, energies, strict=True):
                    image.info["reference_energy"] = float(energy)
                ase.io.write(cached, images, format="extxyz")
        for image in images:
            image.calc = None
        paths[spec.name] = (images, energies, spec)
    return paths


def model_calculators(suite: ProbeSuite, run_dirs: dict[str, Path], device: str = "cpu"
                      ) -> dict[str, Callable[[], Calculator]]:
    factories: dict[str, Callable[[], Calculator]] = {}
    for label, run_dir in run_dirs.items():
        potential = load_potential(run_dir, device)  # one model shared by a probe's calculators
        dtype = DTYPES[read_run_config(run_dir)[0].training.dtype]
        factories[label] = (lambda p=potential, d=dtype: MLIPCalculator(p, dtype=d))
    if suite.reference_as_model:
        factories[REFERENCE_LABEL] = reference_factory(suite)
    return factories


def run_suite(suite: ProbeSuite, root: Path | None, out: Path,
              on_event: Callable[[str], None] | None = None, device: str | None = None
              ) -> Path:
    """Everything a suite asks for, models on ``device`` (default: the suite's); returns the
    path of ``probe_results.json``."""
    check_inputs(suite, root)
    device = str(resolve_device(device or suite.device))
    out.mkdir(parents=True, exist_ok=True)
    (out / "suite.json").write_text(json.dumps(suite.model_dump(mode="json", by_alias=True),
                                               indent=2))
    data = training_dataset(suite, root, out, on_event)
    run_dirs = train_models(suite, data, out, on_event, device)
    paths = reference_paths(suite, root, out)
    reference = reference_factory(suite)
    calculators = model_calculators(suite, run_dirs, device)
    sliding_reference = None
    if suite.sliding is not None:
        sliding_system = build_system(suite.sliding.system, root)
        slide = sliding_images(sliding_system, suite.sliding.settings)
        sliding_reference = CachedJSON(out / "sliding").get(
            f"reference_{_key(suite.sliding, suite.reference)}",
            lambda: {"energies": single_points(slide, reference()).tolist()})
    held_out = _held_out_frames(data) if suite.equilibrium else None
    conditions = _held_out_conditions(suite, root, len(held_out)) if held_out else None
    results: dict[str, dict] = {}
    for label, factory in calculators.items():
        # a result is reused only for the same trained weights and the same probe settings
        weights = run_dirs[label].name.rsplit("-", 1)[-1] if label in run_dirs \
            else _key(suite.reference)
        cache = CachedJSON(out / "probes" / f"{label}-{weights}")
        model_results: dict = {"fixed_path": [], "neb": {}}
        for name, (images, energies, spec) in paths.items():
            _say(on_event, f"{label}: fixed path {name}")
            model_results["fixed_path"].append(cache.get(
                f"fixed_{name}_{_key(spec)}",
                lambda i=images, e=energies, s=spec, f=factory: fixed_path(
                    i, e, f(), s.name, s.path_class).model_dump()))
            if spec.self_consistent:
                _say(on_event, f"{label}: self-consistent NEB {name}")
                # the fixed path's barrier is the reference's NEB barrier only for NEB paths;
                # a straight-line path is not a minimum-energy path (compare the rescored
                # barrier, or the reference's own row, instead)
                reference_barrier = None if spec.source == "linear" and spec.endpoints \
                    else float(np.max(energies - energies[0]))
                model_results["neb"][name] = cache.get(
                    f"neb_{name}_{_key(spec, suite.neb)}",
                    lambda i=images, b=reference_barrier, f=factory: self_consistent_neb(
                        i[0], i[-1], f, suite.neb, reference, b).model_dump())
        model_results["fixed_path_by_class"] = errors_by_class(
            [FixedPathResult(**r) for r in model_results["fixed_path"]])
        if suite.sliding is not None:
            _say(on_event, f"{label}: sliding")
            model_results["sliding"] = cache.get(f"sliding_{_key(suite.sliding)}",
                                                 lambda f=factory: sliding_probe(
                slide, f(), sliding_reference["energies"]).model_dump())
        if held_out is not None:
            _say(on_event, f"{label}: equilibrium on {len(held_out)} held-out frames")
            model_results["equilibrium"] = cache.get(
                f"equilibrium_{_key(suite.training_data, 'per-condition')}",
                lambda f=factory: equilibrium_errors(held_out, f(), conditions))
        if suite.md is not None:
            _say(on_event, f"{label}: MD stability")
            system = build_system(suite.system, root)
            model_results["md"] = cache.get(
                f"md_{_key(suite.md, suite.system)}",
                lambda s=system, f=factory: md_stability(s, f(), suite.md).model_dump())
        results[label] = model_results
    if suite.representations and run_dirs and paths:
        _say(on_event, "representations of the path images")
        results_repr = path_representations(run_dirs, paths, out / "representations", device)
    else:
        results_repr = None
    summary = {"suite": suite.name, "suite_hash": suite_hash(suite),
               "level_of_theory": _level_of_theory(suite), "dataset": str(data),
               "runs": {label: str(path) for label, path in run_dirs.items()},
               "results": results, "representations": results_repr}
    path = out / "probe_results.json"
    write_text(path, json.dumps(summary, indent=2))
    write_probe_report(path, out / "report")
    return path


def _held_out_conditions(suite: ProbeSuite, root: Path | None, n_frames: int) -> list[str]:
    """The condition of each held-out frame, in the stored order: its test file for stored
    data (each file is a condition: a temperature, a phase, a defect), the OOD temperature's
    MD for generated data."""
    data = suite.training_data
    if isinstance(data, GeneratedFrames):
        return [f"MD at {data.ood_temperature_K:g} K"] * n_frames
    conditions: list[str] = []
    for name in data.test_files:
        count = len(ase.io.read(resolve_data_file(root, name), index=":"))
        conditions += [name] * count
    conditions = conditions[:n_frames]  # max_test_frames keeps the first frames
    if len(conditions) != n_frames:
        raise GmdError(f"probe suite {suite.name}: {n_frames} held-out frames stored but its "
                       f"test files hold {len(conditions)}: the stored dataset was built from "
                       "other files; remove the suite's data/ folder to rebuild it")
    return conditions


def _held_out_frames(data: Path) -> list[Atoms]:
    store = DatasetStore(data)
    frames = []
    for row in store.rows(split="ood_test"):
        atoms = store.to_atoms(row)
        frames.append(atoms)
    return frames
