"""The active-learning study archive's own faults: a torn or foreign file is one error naming
it, never a silent fresh start that would run (and then overwrite) finished units."""

import pytest

from gmdbench.errors import GmdError
from gmdbench.runner.study_archive import ArchivedUnit, StudyArchive


def _unit(rule: str = "random", seed: int = 3) -> ArchivedUnit:
    return ArchivedUnit(rule=rule, seed=seed, points=[{"round": 0, "labels": 0}],
                        picks=[{"pool_indices": [4, 1]}], base_dataset_hash="b",
                        pool_dataset_hash="p", device="cpu", machine="m", versions={},
                        wall_seconds=1.0)


def test_a_unit_reads_back_as_written_and_an_absent_one_is_none(tmp_path):
    archive = StudyArchive(tmp_path)
    assert archive.saved_config() is None and archive.unit("random", 3) is None
    archive.start({"name": "s", "seeds": [3]})
    archive.start({"name": "other"})  # an existing archive keeps its own config
    assert archive.saved_config() == {"name": "s", "seeds": [3]}
    path = archive.save_unit(_unit())
    assert path == tmp_path / "units" / "random-seed3.json"
    assert archive.unit("random", 3) == _unit()
    assert archive.unit("random", 4) is None and archive.unit("ensemble", 3) is None
    assert not archive.restore_uncertainty(3, tmp_path / "out")


def test_uncertainty_is_saved_with_its_unit_and_restored(tmp_path):
    made = tmp_path / "made"
    made.mkdir()
    (made / "frames.csv").write_text("frame,sigma\n0,0.1\n")
    (made / "uncertainty.json").write_text("{}")
    (made / "uncertainty.png").write_bytes(b"\x89PNG")  # a figure: not archived
    archive = StudyArchive(tmp_path / "archive")
    archive.save_unit(_unit("ensemble"), uncertainty=made)
    assert archive.restore_uncertainty(3, tmp_path / "out")
    restored = tmp_path / "out" / "uncertainty" / "round0-seed3"
    assert sorted(p.name for p in restored.iterdir()) == ["frames.csv", "uncertainty.json"]
    assert (restored / "frames.csv").read_text() == "frame,sigma\n0,0.1\n"


def test_torn_files_are_named_not_ignored(tmp_path):
    archive = StudyArchive(tmp_path)
    (tmp_path / "study.json").write_text('{"conf')
    with pytest.raises(GmdError, match=r"study\.json is not a study archive"):
        archive.saved_config()
    (tmp_path / "units").mkdir()
    (tmp_path / "units" / "random-seed0.json").write_text('{"rule": "random"}')
    with pytest.raises(GmdError, match=r"random-seed0\.json is not an archived study unit"):
        archive.unit("random", 0)
