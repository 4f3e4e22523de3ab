"""The probes on the self-contained systems: the reference scored as a model has zero errors,
a broken model explodes, the suite runs end to end from its YAML."""

import itertools
import json

import numpy as np
import pytest
from ase.calculators.emt import EMT
from fake_calculators import ForcesTimes100, UphillForces

from gmdbench.probes.md import MDSettings, md_stability
from gmdbench.probes.neb import (
    NEBSettings,
    errors_by_class,
    fixed_path,
    linear_path,
    reference_neb_path,
    self_consistent_neb,
    single_points,
)
from gmdbench.probes.sliding import SlidingSettings, sliding_images, sliding_probe
from gmdbench.probes.systems import (
    fcc_vacancy,
    graphene_bilayer,
    nearest_neighbour_hop,
    second_neighbour_hop,
)
from gmdbench.reference.registry import resolve_reference
from tests_support import DATA, gmd

NEB = NEBSettings(images=3, max_steps=100)


def test_reference_as_model_has_zero_fixed_path_errors():
    vacancy = fcc_vacancy()
    interpolation, energies = reference_neb_path(*nearest_neighbour_hop(vacancy), EMT, NEB)
    extrapolation = linear_path(*second_neighbour_hop(vacancy), 3)
    results = [fixed_path(interpolation, energies, EMT(), "nn", "interpolation"),
               fixed_path(extrapolation, single_points(extrapolation, EMT()), EMT(), "2nn",
                          "extrapolation")]
    for result in results:
        assert result.barrier_error == pytest.approx(0.0, abs=1e-10)
        assert result.profile_mae == pytest.approx(0.0, abs=1e-10)
    # the nearest-neighbour EMT barrier of Cu is a well-known ~0.7-0.8 eV; the squeezed
    # straight second-neighbour line is far higher
    assert 0.5 < results[0].reference_barrier < 1.0
    assert results[1].reference_barrier > 5 * results[0].reference_barrier
    by_class = errors_by_class(results)
    assert set(by_class) == {"interpolation", "extrapolation"}


def test_sliding_periodicity_error_of_the_reference_is_zero():
    """GFN1-xTB on bilayer graphene: a shift by a lattice vector ends where it started."""
    gfn1 = resolve_reference("gfn1-xtb")
    images = sliding_images(graphene_bilayer(repeat=3),
                            SlidingSettings(lattice_translation=[1 / 3, 0, 0], block_tag=1,
                                            images=4))
    reference = single_points(images, gfn1.make_calculator())
    result = sliding_probe(images, gfn1.make_calculator(), reference)
    assert result.periodicity_error == pytest.approx(0.0, abs=1e-5)  # SCF tolerance
    assert result.barrier_error == pytest.approx(0.0, abs=1e-8)
    assert result.model_barrier > 0.01  # AA stacking on the way costs energy


def test_broken_model_is_flagged_as_exploding_by_the_neb():
    initial, final = nearest_neighbour_hop(fcc_vacancy())
    broken = self_consistent_neb(initial, final, ForcesTimes100, NEB, reference=EMT)
    assert broken.exploded and not broken.converged
    assert "force" in broken.explosion or "distance" in broken.explosion
    sane = self_consistent_neb(initial, final, EMT, NEB, reference=EMT)
    assert sane.converged and not sane.exploded
    assert sane.rescored_barrier == pytest.approx(sane.model_barrier, abs=1e-10)


def test_md_stability_flags_a_broken_model():
    settings = MDSettings(temperature_K=600, steps=60, interval=5)
    stable = md_stability(fcc_vacancy(), EMT(), settings)
    assert not stable.exploded and stable.steps_completed == 60
    assert stable.rdf is not None and stable.pressure_drift_GPa_per_ps is not None
    broken = md_stability(fcc_vacancy(), UphillForces(), settings)
    assert broken.exploded and broken.steps_completed < 60


def test_probe_suite_runs_from_yaml_and_resumes(tmp_path):
    suite = DATA / "tiny_probe_suite.yaml"
    result = gmd("probe", "run", suite, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    summary = json.loads((tmp_path / "out" / "probe_results.json").read_text())
    reference = summary["results"]["reference"]
    assert all(abs(r["barrier_error"]) < 1e-9 for r in reference["fixed_path"])
    assert abs(reference["sliding"]["periodicity_error"]) < 1e-9
    assert reference["equilibrium"]["force_mae"] < 1e-9
    model = summary["results"]["schnet-scratch-s0"]
    assert {r["path_class"] for r in model["fixed_path"]} == {"interpolation", "extrapolation"}
    assert set(model["neb"]) == {"nn_hop", "second_nn_straight"}
    report = (tmp_path / "out" / "report" / "probes.md").read_text()
    for section in ("barrier error by class", "Self-consistent NEB", "Sliding", "MD stability"):
        assert section in report
    assert (tmp_path / "out" / "report" / "neb_profile_nn_hop.png").exists()
    assert "neb_profile_nn_hop.png" in (tmp_path / "out" / "report" / "index.html").read_text()
    # a second run reuses every cached result: the same numbers, no new training
    before = (tmp_path / "out" / "probe_results.json").read_text()
    again = gmd("probe", "run", suite, "--out", tmp_path / "out")
    assert again.returncode == 0, again.stderr
    assert json.loads(before)["results"] == json.loads(
        (tmp_path / "out" / "probe_results.json").read_text())["results"]
    rebuilt = gmd("report", tmp_path / "out", "--out", tmp_path / "again")
    assert rebuilt.returncode == 0 and (tmp_path / "again" / "probes.md").exists()


def test_bad_suite_yaml_is_refused_with_its_name(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsystem: {builder: 'gmdbench.probes.systems:fcc_vacancy'}\n"
                   "training_data: {temperature_K: 300}\nmodels: []\n")
    result = gmd("probe", "run", bad)
    assert result.returncode == 2
    assert "bad.yaml" in result.stderr


def test_builtin_suites_load():
    from gmdbench.probes.suite import builtin_suite_names, load_suite

    names = builtin_suite_names()
    assert {"emt_vacancy", "gfn1_bilayer", "cr_sb2te3"} <= set(names)
    emt, _ = load_suite("emt_vacancy")
    assert {p.path_class for p in emt.paths} == {"interpolation", "extrapolation"}
    assert {m.regime for m in emt.models} >= {"scratch", "fine-tune", "zero-shot-refit"}
    cr, _ = load_suite("cr_sb2te3")
    assert all(p.path_class is None for p in cr.paths)  # the source does not say


def test_straight_path_energies_are_the_reference_energies_of_its_images():
    """single_points returns, per image, what EMT gives that image alone; the images step
    evenly from the initial to the final vacancy site; the hop costs energy (E_mid > E_0)."""
    initial, final = nearest_neighbour_hop(fcc_vacancy())
    images = linear_path(initial, final, 2)
    energies = single_points(images, EMT())
    assert len(images) == 4
    for image, energy in zip(images, energies, strict=True):
        alone = image.copy()
        alone.calc = EMT()
        assert energy == pytest.approx(alone.get_potential_energy(), abs=1e-10)
    steps = [b.positions - a.positions for a, b in itertools.pairwise(images)]
    assert np.allclose(steps[0], steps[1]) and np.allclose(steps[1], steps[2])
    assert energies[1] > energies[0] and energies[2] > energies[0]


def test_rdf_fits_a_hexagonal_cell():
    """The bilayer's cell is narrower face to face than its vectors are long."""
    from gmdbench.probes.md import _mean_rdf

    r, g = _mean_rdf([graphene_bilayer()], MDSettings(rdf_rmax=5.0))
    assert max(r) < 3.2 and np.argmax(g) == np.argmin(np.abs(np.array(r) - 1.42))


def test_sliding_block_by_z_range_equals_block_by_tag():
    bilayer = graphene_bilayer(repeat=3)
    by_tag = SlidingSettings(lattice_translation=[1 / 3, 0, 0], block_tag=1, images=3)
    top = bilayer.positions[bilayer.get_tags() == 1, 2]
    by_range = SlidingSettings(lattice_translation=[1 / 3, 0, 0], block_z_min=top.min() - 0.1,
                               block_z_max=top.max() + 0.1, images=3)
    assert np.array_equal(by_tag.block(bilayer), by_range.block(bilayer))
    with pytest.raises(ValueError, match="z range"):
        SlidingSettings(lattice_translation=[1, 0, 0], block_tag=1, block_z_max=3.0)


def test_stored_data_suites_fit_their_e0_by_default_and_refuse_isolated_before_any_work():
    """Stored frames without a reference method have no isolated-atom energies: a scratch
    model's E0 is fitted unless asked otherwise, and asking for isolated fails at load."""
    from pydantic import ValidationError

    from gmdbench.probes.suite import ProbeSuite

    suite = {"name": "stored", "system": {"file": "a.extxyz"},
             "training_data": {"files": ["a.extxyz"], "test_files": ["b.extxyz"]},
             "models": [{"name": "mace"}, {"name": "chgnet", "regime": "zero-shot"}]}
    loaded = ProbeSuite.model_validate(suite)
    assert loaded.models[0].training.reference_energies == "fit"
    assert loaded.models[1].regime == "zero-shot"
    isolated = {**suite, "models": [{"name": "mace",
                                     "training": {"reference_energies": "isolated"}}]}
    with pytest.raises(ValidationError, match="no isolated-atom energies"):
        ProbeSuite.model_validate(isolated)
    # with a reference method the isolated atoms exist: nothing is changed
    generated = {**suite, "reference": "emt"}
    assert ProbeSuite.model_validate(generated).models[0].training.reference_energies == \
        "isolated"


def test_equilibrium_errors_are_also_given_per_condition():
    """Two held-out conditions, one the model gets exactly and one off by 0.1 eV/A per force
    component: the pooled number mixes them, the per-condition ones do not."""
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from ase.calculators.singlepoint import SinglePointCalculator

    from gmdbench.probes.equilibrium import equilibrium_errors

    frames = []
    for index, shift in enumerate((0.0, 0.0, 0.1, 0.1)):
        atoms = bulk("Cu", cubic=True) * (2, 1, 1)
        atoms.rattle(0.05, seed=index)
        atoms.calc = EMT()
        energy, forces = atoms.get_potential_energy(), atoms.get_forces() + shift
        labelled = atoms.copy()
        labelled.calc = SinglePointCalculator(labelled, energy=energy, forces=forces)
        frames.append(labelled)
    result = equilibrium_errors(frames, EMT(), ["cold.extxyz"] * 2 + ["hot.extxyz"] * 2)
    per = result["per_condition"]
    assert list(per) == ["cold.extxyz", "hot.extxyz"]
    assert per["cold.extxyz"]["force_mae"] == pytest.approx(0.0, abs=1e-12)
    assert per["hot.extxyz"]["force_mae"] == pytest.approx(0.1)
    assert result["force_mae"] == pytest.approx(0.05)
    assert per["hot.extxyz"]["frames"] == 2
    assert "per_condition" not in equilibrium_errors(frames, EMT())


def test_suite_inputs_are_checked_before_any_work(tmp_path):
    """An unknown model name and a stored path with an element the system lacks both fail in
    check_inputs, before data, training or probes; another cell of the same elements is fine."""
    import ase.io
    from ase.build import bulk
    from ase.calculators.singlepoint import SinglePointCalculator

    from gmdbench.errors import GmdError
    from gmdbench.probes.suite import ProbeSuite, check_inputs

    def labelled(atoms):
        atoms.calc = SinglePointCalculator(atoms, energy=0.0, forces=np.zeros((len(atoms), 3)))
        return atoms

    ase.io.write(tmp_path / "system.extxyz", labelled(bulk("Cu", cubic=True) * 2))
    ase.io.write(tmp_path / "train.extxyz", [labelled(bulk("Cu", cubic=True))])
    ase.io.write(tmp_path / "same.extxyz", [labelled(bulk("Cu", cubic=True))] * 3)
    alloy = bulk("Cu", cubic=True)
    alloy[0].symbol = "Au"
    ase.io.write(tmp_path / "foreign.extxyz", [labelled(alloy)] * 3)
    suite = {"name": "inputs", "system": {"file": "system.extxyz"},
             "training_data": {"files": ["train.extxyz"], "test_files": ["train.extxyz"]},
             "paths": [{"name": "same", "file": "same.extxyz", "self_consistent": False}],
             "models": [{"name": "schnet"}]}
    check_inputs(ProbeSuite.model_validate(suite), tmp_path)  # another cell, same elements
    foreign = {**suite, "paths": [{"name": "hop", "file": "foreign.extxyz",
                                   "self_consistent": False}]}
    with pytest.raises(GmdError, match="holds Au"):
        check_inputs(ProbeSuite.model_validate(foreign), tmp_path)
    unknown = {**suite, "models": [{"name": "schnett"}]}
    with pytest.raises(GmdError, match="unknown model 'schnett'"):
        check_inputs(ProbeSuite.model_validate(unknown), tmp_path)
