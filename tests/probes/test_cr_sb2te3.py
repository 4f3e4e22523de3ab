"""The Cr-doped Sb2Te3 suite on the public DFT data in ../shared (skipped only without it)."""

import json

import pytest

from gmdbench.config import ModelEntry, TrainConfig
from gmdbench.pipeline.suites import run_suite
from gmdbench.probes.suite import load_suite
from tests_support import SHARED

CR_DATA = SHARED / "data" / "cr_sb2te3"
pytestmark = pytest.mark.skipif(not (CR_DATA / "neb" / "2d_neb_1.extxyz").exists(),
                                reason=f"the public Cr-Sb2Te3 DFT data are not at {CR_DATA}")


def test_cr_sb2te3_suite_scores_the_dft_neb_paths(tmp_path):
    suite, _ = load_suite("cr_sb2te3")
    small = suite.model_copy(update={
        "training_data": suite.training_data.model_copy(
            update={"max_train_frames": 8, "max_test_frames": 4}),
        "models": [ModelEntry(name="mace", options={"hidden_irreps": "8x0e", "mlp_irreps": "8x0e",
                                                    "radial_mlp": [8], "num_interactions": 1,
                                                    "correlation": 1},
                              training=TrainConfig(epochs=1, batch_size=4,
                                                   reference_energies="fit")),
                   ModelEntry(name="chgnet", regime="zero-shot")],
        "representations": False})
    summary = json.loads(run_suite(small, CR_DATA, tmp_path).read_text())
    for label in ("mace-scratch-s0", "chgnet-zero-shot-s0"):
        paths = {r["path"]: r for r in summary["results"][label]["fixed_path"]}
        # the DFT barriers the data's README gives (max E - E(image 1))
        assert paths["2d_neb_1"]["reference_barrier"] == pytest.approx(1.0347, abs=1e-3)
        assert paths["2d_neb_2"]["reference_barrier"] == pytest.approx(1.5613, abs=1e-3)
        assert all(r["path_class"] is None for r in paths.values())
        assert set(summary["results"][label]["fixed_path_by_class"]) == {"unlabelled"}
        # the equilibrium probe's force MAE is the mean error on the held-out DFT frames
        equilibrium = summary["results"][label]["equilibrium"]
        assert 0.01 < equilibrium["force_mae"] < 5.0 and -1 <= equilibrium["force_cosine"] <= 1
        # reported per held-out file too (here one file, so the same numbers)
        per_file = equilibrium["per_condition"]
        assert list(per_file) == ["dft_600K_b.extxyz"] and per_file[
            "dft_600K_b.extxyz"]["frames"] == 4
        assert per_file["dft_600K_b.extxyz"]["force_mae"] == pytest.approx(
            equilibrium["force_mae"])
    assert (tmp_path / "report" / "neb_profile_2d_neb_1.png").exists()
