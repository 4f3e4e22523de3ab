import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.data import chemical_symbols

from gmdbench.errors import LabelError, ReferenceMethodError, UnsupportedElementError
from gmdbench.reference.registry import ReferenceConfig, label_with_retries, resolve_reference
from tests_support import SB2TE3_FRAMES


def test_gfn2_is_the_default_and_names_itself():
    method = resolve_reference(ReferenceConfig())
    assert method.level_of_theory.startswith("GFN2-xTB (tblite ")
    assert resolve_reference("gfn1-xtb").level_of_theory.startswith("GFN1-xTB")


def test_labels_equal_a_direct_tblite_call(capfd):
    from tblite.ase import TBLite

    atoms = molecule("CH3CH2OH")
    capfd.readouterr()
    energy, forces = label_with_retries(atoms, resolve_reference("gfn2-xtb"))
    assert capfd.readouterr() == ("", "")  # silent: a build labels thousands of frames
    direct = atoms.copy()
    direct.calc = TBLite(method="GFN2-xTB", verbosity=0)
    assert energy == pytest.approx(direct.get_potential_energy(), abs=1e-8)
    np.testing.assert_allclose(forces, direct.get_forces(), atol=1e-8)


def test_isolated_atoms_are_the_hund_ground_states_called_directly():
    """E0 is each atom at its Hund's-rule multiplicity (H 2, C 3, O 3), exactly what tblite
    gives for it; the singlets (0.049 eV lower for C and O in GFN2-xTB) are not what is
    stored."""
    energies = resolve_reference("gfn2-xtb").isolated_atom_energies({"H", "C", "O"})
    assert set(energies) == {"H", "C", "O"}
    for symbol, multiplicity in (("H", 2), ("C", 3), ("O", 3)):
        assert energies[symbol] == pytest.approx(_tblite_atom(symbol, multiplicity), abs=1e-8)
    for symbol in ("C", "O"):
        singlet = _tblite_atom(symbol, 1)
        assert energies[symbol] - singlet == pytest.approx(0.049, abs=0.002)


@pytest.mark.parametrize(("symbol", "unpaired"), [
    ("H", 1), ("He", 0), ("C", 2), ("N", 3), ("O", 2), ("F", 1), ("Ne", 0), ("Na", 1),
    ("S", 2), ("Cr", 6), ("Mn", 5), ("Fe", 4), ("Cu", 1), ("Zn", 0), ("Pd", 0), ("Gd", 8),
    ("U", 4), ("Rf", 0), ("Db", 1)])
def test_free_atom_spins_follow_hunds_rule(symbol, unpaired):
    """Hand-worked ground states: p2 and p4 give two unpaired electrons, half-filled p3 three,
    Cr's 3d5 4s1 six, Gd's 4f7 5d1 eight; past ASE's table (Rf, Db) the parity of Z."""
    from gmdbench.reference.atomic_spin import unpaired_electrons

    assert unpaired_electrons(symbol) == unpaired


def _tblite_atom(symbol: str, multiplicity: int) -> float:
    from ase import Atoms
    from tblite.ase import TBLite

    atom = Atoms(symbol, positions=[[0.0, 0.0, 0.0]])
    atom.calc = TBLite(method="GFN2-xTB", verbosity=0, multiplicity=multiplicity)
    return float(atom.get_potential_energy())


def test_unsupported_element_is_refused_with_its_name():
    with pytest.raises(UnsupportedElementError, match=r"'emt'.*Cl.*CCCl"):
        resolve_reference("emt").check_elements({"C", "H", "Cl"}, "molecule CCCl")
    with pytest.raises(UnsupportedElementError, match="Og"):
        resolve_reference("gfn2-xtb").check_elements({"Og"}, "molecule X")


def test_unknown_reference_names_are_refused():
    with pytest.raises(ReferenceMethodError, match="unknown reference method 'b3lyp'"):
        resolve_reference("b3lyp")
    with pytest.raises(ReferenceMethodError, match="pyscf:<functional>/<basis>"):
        resolve_reference("pyscf:b3lyp")
    with pytest.raises(ReferenceMethodError,
                       match=r"no_such_module_xyz:factory.*cannot be imported"):
        resolve_reference("no_such_module_xyz:factory")


def test_pyscf_forces_are_minus_the_energy_gradient():
    method = resolve_reference("pyscf:pbe/sto-3g")
    assert "PBE/sto-3g" in method.level_of_theory
    water = molecule("H2O")
    energy, forces = label_with_retries(water, method)
    delta = 1e-3
    shifted = water.copy()
    shifted.positions[0, 2] += delta
    plus, _ = label_with_retries(shifted, method)
    shifted.positions[0, 2] -= 2 * delta
    minus, _ = label_with_retries(shifted, method)
    assert forces[0, 2] == pytest.approx(-(plus - minus) / (2 * delta), abs=2e-3)
    assert np.isfinite(energy)


def test_any_ase_calculator_by_module_and_factory():
    method = resolve_reference("fake_calculators:emt_factory")
    energy, forces = label_with_retries(molecule("CH4"), method)
    assert np.isfinite(energy) and forces.shape == (5, 3)


def test_nan_forces_are_a_label_error():
    method = resolve_reference("fake_calculators:NaNForcesForPropane")
    with pytest.raises(LabelError, match="non-finite forces"):
        label_with_retries(molecule("C3H8"), method)


def test_scf_non_convergence_is_retried_then_reported():
    atoms = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]])
    config = ReferenceConfig(options={"max_iterations": 1}, retries=[{"max_iterations": 2}])
    with pytest.raises(LabelError, match=r"SCF not converged.*SCF not converged"):
        label_with_retries(atoms, resolve_reference(config))
    # with a retry that has room to converge, the frame is labelled
    rescued = ReferenceConfig(options={"max_iterations": 1}, retries=[{"max_iterations": 100}])
    energy, _ = label_with_retries(atoms, resolve_reference(rescued))
    assert np.isfinite(energy)


@pytest.mark.skipif(not SB2TE3_FRAMES.exists(), reason=f"{SB2TE3_FRAMES} absent (../shared)")
def test_gfn2_on_periodic_sb2te3_does_not_converge_and_says_so():
    import ase.io

    atoms = ase.io.read(SB2TE3_FRAMES, index=0)
    assert atoms.pbc.all()
    config = ReferenceConfig(options={"max_iterations": 5}, retries=[])
    with pytest.raises(LabelError, match="SCF not converged"):
        label_with_retries(atoms, resolve_reference(config))


def test_charge_and_spin_come_from_the_smiles_and_reach_the_reference():
    """NH4+ was labelled as a neutral singlet (-129.065 eV); with charge +1 tblite gives
    -121.34 eV. A methyl radical is a doublet."""
    from tblite.ase import TBLite

    from gmdbench.chem.molecules import charge_and_multiplicity, embed_conformers
    from gmdbench.reference.registry import label_with_retries, resolve_reference

    assert charge_and_multiplicity("[NH4+]") == (1, 1)
    assert charge_and_multiplicity("CC(=O)[O-]") == (-1, 1)
    assert charge_and_multiplicity("[CH3]") == (0, 2)
    assert charge_and_multiplicity("CCO") == (0, 1)
    method = resolve_reference("gfn2-xtb")
    for smiles, charge, multiplicity in (("[NH4+]", 1, 1), ("[CH3]", 0, 2),
                                         ("CC(=O)[O-]", -1, 1)):
        atoms = embed_conformers(smiles, 1, seed=0)[0]
        energy, _ = label_with_retries(atoms, method)
        direct = atoms.copy()
        direct.calc = TBLite(method="GFN2-xTB", charge=charge, multiplicity=multiplicity,
                             verbosity=0)
        assert energy == pytest.approx(direct.get_potential_energy(), abs=1e-8)
        if charge:
            neutral = atoms.copy()
            neutral.calc = TBLite(method="GFN2-xTB", verbosity=0)
            assert abs(energy - neutral.get_potential_energy()) > 1.0


def test_a_charged_molecule_builds_with_its_charge_and_emt_refuses_it(tmp_path):
    from gmdbench.config import load_preset
    from gmdbench.data.generate import build_dataset
    from gmdbench.data.store import DatasetStore
    from gmdbench.errors import ReferenceMethodError
    from gmdbench.reference.registry import ReferenceConfig
    from gmdbench.tasks.spec import load_task

    task_file = tmp_path / "ions.yaml"
    task_file.write_text("name: ions\nfragments: [methyl]\nfamilies:\n"
                         "  - {name: cations, role: train, smiles: ['[NH4+]', 'C[NH3+]']}\n"
                         "  - {name: anion, role: ood, smiles: ['CC(=O)[O-]']}\n")
    from conftest import DATA

    preset = load_preset(str(DATA / "tiny_preset.yaml"))
    task = load_task(task_file)
    with pytest.raises(ReferenceMethodError, match=r"'emt' cannot set a total charge.*\[NH4\+\]"):
        build_dataset(task, preset, ReferenceConfig(name="emt"), 0, tmp_path / "emt.db")
    assert not (tmp_path / "emt.db").exists()
    out = tmp_path / "ions.db"
    build_dataset(task, preset, ReferenceConfig(), 0, out, workers=1)
    store = DatasetStore(out)
    rows = {row.smiles: row for row in store.rows()}
    assert (rows["[NH4+]"].total_charge, rows["[NH4+]"].multiplicity) == (1, 1)
    assert (rows["CC(=O)[O-]"].total_charge, rows["CC(=O)[O-]"].multiplicity) == (-1, 1)
    assert rows["[NH4+]"].energy > -125.0  # charged NH4+ ~ -121 eV; as a neutral, -129


def test_xtb_treats_hydrogen_to_radon_and_nothing_else():
    """tblite parametrises Z = 1-86: the edges are H and Rn in, Fr out (and ASE's dummy X)."""
    method = resolve_reference("gfn2-xtb")
    method.check_elements({"H", "Rn"}, "molecule HRn")
    assert method.supported_elements == frozenset(
        symbol for z, symbol in enumerate(chemical_symbols) if 1 <= z <= 86)
    with pytest.raises(UnsupportedElementError, match=r"element\(s\) Fr found in molecule FrH"):
        method.check_elements({"H", "Fr"}, "molecule FrH")
    with pytest.raises(UnsupportedElementError, match=r"element\(s\) Fr, Og found"):
        method.check_elements({"Og", "Fr", "C"}, "molecule Z")  # sorted by Z, named once


@pytest.mark.parametrize("name", ["pyscf:b3lyp/def2-svp/extra", "pyscf:b3lyp/", "pyscf:/sto-3g"])
def test_pyscf_names_need_exactly_one_functional_and_one_basis(name):
    with pytest.raises(ReferenceMethodError, match="pyscf:<functional>/<basis>"):
        resolve_reference(name)


def test_a_pyscf_name_splits_at_its_first_colon_only():
    method = resolve_reference("pyscf:pbe/my:basis")  # a colon further on is the basis's
    assert (method.xc, method.basis) == ("pbe", "my:basis")


def test_a_reference_config_is_frozen_and_a_method_kind_must_give_its_calculator():
    """Configs are shared between labelling workers and hashed into datasets: not mutable. A
    new kind of reference must name its level of theory and build its calculator."""
    from pydantic import ValidationError

    from gmdbench.reference.registry import ReferenceMethod

    with pytest.raises(ValidationError, match="frozen"):
        ReferenceConfig().name = "emt"

    class NoCalculator(ReferenceMethod):
        level_of_theory = "nothing"

    class NoName(ReferenceMethod):
        def _calculator(self, options):
            return None

    for incomplete in (NoCalculator, NoName):
        with pytest.raises(TypeError, match="abstract"):
            incomplete(ReferenceConfig())

    class Minimal(NoCalculator, NoName):  # says nothing about its elements: none refused
        pass

    minimal = Minimal(ReferenceConfig())
    assert minimal.supported_elements is None
    minimal.check_elements({"Og"}, "molecule Og")
    assert minimal.state_options(0, 1, "x") == {}
    with pytest.raises(ReferenceMethodError, match="cannot set a total charge or spin"):
        minimal.state_options(1, 1, "molecule X")


def test_attempts_are_the_options_then_each_retry_on_top():
    configured = ReferenceConfig(options={"accuracy": 0.5})
    attempts = resolve_reference(configured).attempts()
    assert attempts == [
        {"accuracy": 0.5},
        {"accuracy": 0.5, "max_iterations": 500, "mixer_damping": 0.2},
        {"accuracy": 0.5, "max_iterations": 1000, "mixer_damping": 0.1,
         "electronic_temperature": 1000.0}]
    assert resolve_reference(ReferenceConfig(retries=[])).attempts() == [{}]
    # a retry overrides a configured option of the same name
    overriding = ReferenceConfig(options={"max_iterations": 1}, retries=[{"max_iterations": 9}])
    assert resolve_reference(overriding).attempts() == [{"max_iterations": 1},
                                                        {"max_iterations": 9}]
    assert resolve_reference("pyscf:pbe/sto-3g").attempts() == [{}, {"max_cycle": 300}]
    assert resolve_reference("emt").attempts() == [{}]


def test_labelling_leaves_the_callers_atoms_alone_unless_told():
    method = resolve_reference("emt")
    atoms = molecule("CH4")
    label_with_retries(atoms, method)
    assert atoms.calc is None
    label_with_retries(atoms, method, copy=False)  # a throwaway structure: labelled in place
    assert atoms.calc is not None


def test_non_finite_labels_are_named():
    from gmdbench.reference.registry import check_finite

    with pytest.raises(LabelError, match=r"non-finite energy \(nan\)"):
        check_finite(float("nan"), np.zeros((2, 3)))
    forces = np.zeros((2, 3))
    forces[0, 1] = forces[1, 2] = np.inf
    with pytest.raises(LabelError, match=r"non-finite forces \(2 components\)"):
        check_finite(-1.0, forces)
    check_finite(-1.0, np.zeros((2, 3)))  # finite: no error


def _pyscf_direct(symbols: str, positions, charge: int, spin: int) -> float:
    """PBE/STO-3G energy (eV) straight from PySCF: unrestricted Kohn-Sham when spin > 0."""
    from ase.units import Hartree
    from pyscf import dft, gto

    mol = gto.M(atom=list(zip(symbols, map(tuple, positions), strict=True)), basis="sto-3g",
                charge=charge, spin=spin, unit="Angstrom", verbose=0)
    solver = dft.UKS(mol) if spin else dft.RKS(mol)
    solver.xc = "pbe"
    solver.conv_tol = 1e-9
    return float(solver.kernel()) * Hartree


def test_pyscf_isolated_atoms_and_open_shells_at_their_spin():
    """PySCF's spin is 2S = multiplicity - 1: free H and O atoms at their Hund's-rule spins (1
    and 2 unpaired electrons) and an OH radical (a doublet) equal direct PySCF calls."""
    method = resolve_reference("pyscf:pbe/sto-3g")
    assert method.state_options(1, 2, "x") == {"charge": 1, "spin": 1}
    assert method.state_options(-1, 3, "x") == {"charge": -1, "spin": 2}  # a triplet: 2S = 2
    energies = method.isolated_atom_energies({"H", "O"})
    for symbol, spin in (("H", 1), ("O", 2)):
        assert energies[symbol] == pytest.approx(
            _pyscf_direct(symbol, [[0.0, 0.0, 0.0]], 0, spin), abs=1e-6)
    radical = Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.97]],
                    info={"charge": 0, "multiplicity": 2, "smiles": "[OH]"})
    energy, _ = label_with_retries(radical, method)
    assert energy == pytest.approx(_pyscf_direct("OH", radical.positions, 0, 1), abs=1e-6)


def test_a_users_calculator_names_itself_and_its_elements_if_it_can():
    knows = resolve_reference("fake_calculators:EMTForCHNO")
    assert knows.level_of_theory == "EMT for C, H, N, O (test)"
    assert knows.supported_elements == frozenset({"H", "C", "N", "O"})
    with pytest.raises(UnsupportedElementError, match=r"element\(s\) S found in molecule CS"):
        knows.check_elements({"C", "S"}, "molecule CS")
    silent = resolve_reference("fake_calculators:emt_factory")
    assert silent.level_of_theory == "ASE calculator fake_calculators:emt_factory"
    assert silent.supported_elements is None
    silent.check_elements({"Og"}, "molecule Og")  # it cannot say: nothing is refused up front


def test_a_non_finite_label_is_retried_and_each_attempt_is_reported():
    """Non-finite forces go to the next option set like an unconverged SCF does: rescued by a
    retry that fixes them, and reported attempt by attempt when none does."""
    rescued = ReferenceConfig(name="fake_calculators:NaNForcesUnlessDamped",
                              retries=[{"damped": True}])
    energy, forces = label_with_retries(molecule("CH4"), resolve_reference(rescued))
    assert np.isfinite(energy) and np.all(np.isfinite(forces))
    hopeless = ReferenceConfig(name="fake_calculators:NaNForcesUnlessDamped",
                               retries=[{"damped": False}])
    with pytest.raises(LabelError, match=r"^non-finite forces \(15 components\); "
                                         r"non-finite forces \(15 components\)$"):
        label_with_retries(molecule("CH4"), resolve_reference(hopeless))


def test_xtb_names_its_tblite_version():
    from importlib.metadata import version

    assert resolve_reference("gfn2-xtb").level_of_theory == \
        f"GFN2-xTB (tblite {version('tblite')})"
    assert resolve_reference("gfn1-xtb").level_of_theory == \
        f"GFN1-xTB (tblite {version('tblite')})"


@pytest.mark.filterwarnings("ignore:Basis may be available")  # PySCF's note on missing sets
def test_pyscf_treats_the_elements_its_basis_has():
    """STO-3G in PySCF stops at iodine (Z = 53): I in, Rn out; def2-SVP has a gap; ANO-RCC
    reaches curium; an unknown basis or functional is refused by name."""
    method = resolve_reference("pyscf:pbe/sto-3g")
    method.check_elements({"H", "C", "O", "I"}, "molecule HCOI")
    assert method.supported_elements == frozenset(chemical_symbols[1:54])
    with pytest.raises(UnsupportedElementError, match=r"element\(s\) Rn found"):
        method.check_elements({"H", "Rn"}, "molecule RnH")
    with pytest.raises(ReferenceMethodError, match="unknown basis set"):
        resolve_reference("pyscf:pbe/no-such-basis").check_elements({"H"}, "molecule H2")
    # def2-SVP skips the lanthanides Ce..Lu and goes on from Hf to Rn: a gap is not the end
    def2 = resolve_reference("pyscf:pbe/def2-svp").supported_elements
    assert def2 == frozenset(chemical_symbols[1:58]) | frozenset(chemical_symbols[72:87])
    # a relativistic basis goes past radon: the method treats what its basis covers
    assert resolve_reference("pyscf:pbe/ano-rcc").supported_elements == \
        frozenset(chemical_symbols[1:97])
    with pytest.raises(ReferenceMethodError, match="unknown functional 'nofunctional'"):
        resolve_reference("pyscf:nofunctional/sto-3g")


def test_a_reference_name_read_at_run_time_resolves_like_a_literal():
    """Names come from YAML files and the command line, not from string literals: equal
    strings, not the same object, must pick the method."""
    for parts, level in ((("e", "mt"), "EMT (ASE "), (("gfn2", "-xtb"), "GFN2-xTB (tblite ")):
        name = "".join(parts)
        assert resolve_reference(ReferenceConfig(name=name)).level_of_theory.startswith(level)
        assert resolve_reference(name).level_of_theory.startswith(level)
