from pathlib import Path

import ase.io
import numpy as np
import pytest

from gmdbench.data.extxyz import export_extxyz, import_extxyz
from gmdbench.data.store import DatasetStore
from gmdbench.errors import CorruptDatasetError


def test_extxyz_round_trip_with_standard_keys(tiny_dataset, tmp_path):
    store = DatasetStore(tiny_dataset)
    out = tmp_path / "tiny.extxyz"
    n = export_extxyz(store, out)
    assert n == store.count()
    frames = ase.io.read(out, index=":")
    assert len(frames) == n
    first = frames[0]
    assert "energy" in first.calc.results and first.calc.results["forces"].shape == (len(first), 3)
    assert {"smiles", "trajectory_id", "frame", "split", "level_of_theory"} <= set(first.info)

    back = import_extxyz(out, tmp_path / "back.db")
    assert back.count() == n
    assert back.metadata["task"] == store.metadata["task"]
    original = {(r.trajectory_id, r.frame): r for r in store.rows()}
    for row in back.rows():
        twin = original[(row.trajectory_id, row.frame)]
        assert row.smiles == twin.smiles and row.split == twin.split
        np.testing.assert_allclose(row.positions, twin.positions, atol=1e-6)
        np.testing.assert_allclose(row.forces, twin.forces, atol=1e-6)
        assert row.energy == pytest.approx(twin.energy, abs=1e-6)


def test_corrupt_database_is_named(tmp_path):
    bad = tmp_path / "garbage.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(CorruptDatasetError, match=r"garbage\.db"):
        DatasetStore(bad)


def test_truncated_database_is_named(tiny_dataset, tmp_path):
    data = tiny_dataset.read_bytes()
    cut = tmp_path / "cut.db"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptDatasetError, match=r"cut\.db"):
        DatasetStore(cut).summary()
    assert tiny_dataset.read_bytes() == data  # the original is untouched


def test_missing_dataset_is_named(tmp_path):
    with pytest.raises(CorruptDatasetError, match="does not exist"):
        DatasetStore(tmp_path / "nope.db")


def test_a_file_that_is_not_a_gmd_bench_dataset_says_what_it_is_and_is_left_alone(tmp_path):
    """Reading never writes: an empty file, another program's ASE database and an SQLite file
    of another kind are each refused by what they are, and not a byte of them changes."""
    import sqlite3

    import ase.db
    from ase.build import molecule

    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    foreign = tmp_path / "foreign.db"
    ase.db.connect(str(foreign)).write(molecule("H2O"))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE things (x)")
    connection.close()
    for path, what in ((empty, "an empty file"),
                       (foreign, "an ASE database written by another program"),
                       (other, "an SQLite file but not an ASE database")):
        before = path.read_bytes()
        with pytest.raises(CorruptDatasetError) as caught:
            DatasetStore(path)
        assert str(path) in str(caught.value) and what in str(caught.value)
        assert path.read_bytes() == before
    with pytest.raises(CorruptDatasetError, match="is a folder"):
        DatasetStore(tmp_path)


def test_truncated_extxyz_is_named(tiny_dataset, tmp_path):
    full = tmp_path / "full.extxyz"
    export_extxyz(DatasetStore(tiny_dataset), full)
    lines = full.read_text().splitlines()
    cut = tmp_path / "cut.extxyz"
    cut.write_text("\n".join(lines[: len(lines) // 2 + 3]) + "\n")
    with pytest.raises(CorruptDatasetError, match=r"cut\.extxyz"):
        import_extxyz(cut, tmp_path / "cut.db")
    assert not (tmp_path / "cut.db").exists()


def test_a_remembered_content_hash_follows_a_rewrite_in_place(tiny_dataset, tmp_path):
    """Runs check the hash before training and evaluation; the remembered value must never
    survive the file changing under the same path."""
    import os
    import shutil
    import time

    from gmdbench.data.content_hash import _HASHES

    data = tmp_path / "copy.db"
    shutil.copyfile(tiny_dataset, data)
    old = time.time() - 60
    os.utime(data, (old, old))  # old enough to be remembered
    first = DatasetStore(data).content_hash()
    assert first in _HASHES.values()
    assert DatasetStore(data).content_hash() == first  # remembered: the same answer
    store = DatasetStore(data, write=True)
    store.metadata = {**store.metadata, "seed": 12345}  # rewritten in place, now
    assert DatasetStore(data).content_hash() != first


def test_a_hash_is_remembered_only_for_a_file_older_than_two_seconds(tiny_dataset, tmp_path,
                                                                     monkeypatch):
    """git's racy-file rule: a file modified within the last 2 s (or stamped in the future, a
    skewed clock) may change again within its timestamp's resolution, so its hash is computed
    but not remembered; older, it is. The file's time is set and the clock read is fixed, so
    nothing is waited for."""
    import os
    import shutil

    from gmdbench.data import content_hash

    modified = 1_700_000_000 * 10**9  # ns, exact integers (a float second loses the ns)
    second = 10**9
    for age, remembered in ((-30 * second, False), (0, False), (19 * second // 10, False),
                            (2 * second, False), (2 * second + 1, True),
                            (21 * second // 10, True), (3600 * second, True)):
        data = tmp_path / f"aged-{age}.db"
        shutil.copyfile(tiny_dataset, data)
        os.utime(data, ns=(modified, modified))
        monkeypatch.setattr(content_hash.time, "time_ns", lambda age=age: modified + age)
        store = DatasetStore(data)
        digest = store.content_hash()
        assert (content_hash.file_stamp(data) in content_hash._HASHES) is remembered, age
        assert not Path(f"{data}-wal").exists()  # reading a finished dataset adds no file
    monkeypatch.undo()
    assert digest == DatasetStore(tiny_dataset).content_hash()


def test_a_finished_dataset_stays_one_file_after_writes_and_reads(tiny_dataset, tmp_path):
    """WAL is a build session's journal only: a later single write (a failure recorded,
    metadata set) keeps the rollback journal, so readers add no -wal / -shm files beside
    the dataset. SQLite's header byte 18 is the file format: 1 rollback, 2 WAL."""
    import shutil

    data = tmp_path / "finished.db"
    shutil.copyfile(tiny_dataset, data)
    assert data.read_bytes()[18] == 1  # the build folded its WAL back in
    store = DatasetStore(data, write=True)
    store.record_failure("0:train:0", 99, "C", "train", "SCF not converged")
    store.metadata = {**store.metadata, "note": "edited"}
    assert DatasetStore(data).failures() and DatasetStore(data).content_hash()
    assert data.read_bytes()[18] == 1
    assert not Path(f"{data}-wal").exists() and not Path(f"{data}-shm").exists()
    with store.session():  # a build's session journals in WAL until finalize
        store.record_failure("0:train:0", 98, "C", "train", "SCF not converged")
    store.finalize()
    assert data.read_bytes()[18] == 1 and not Path(f"{data}-wal").exists()


def _edited_copy(source, target, edit=None, reverse=False):
    """A copy of a dataset written row by row (in reverse order if asked), ``edit(index, atoms,
    energy, forces)`` changing one row's content before it is written."""
    import ase.db
    from ase.calculators.singlepoint import SinglePointCalculator

    rows = list(ase.db.connect(str(source)).select())
    DatasetStore(target, create=True)  # gmd-bench's tables, then the frames through ASE
    with ase.db.connect(str(target)) as db:  # one transaction
        for index, row in enumerate(reversed(rows) if reverse else rows):
            atoms = row.toatoms()
            energy, forces = float(row.energy), np.array(row.forces)
            if edit is not None:
                energy, forces = edit(index, atoms, energy, forces)
            atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
            db.write(atoms, key_value_pairs=dict(row.key_value_pairs))
    copy = ase.db.connect(str(target))
    copy.metadata = ase.db.connect(str(source)).metadata
    return DatasetStore(target).content_hash()


def test_content_hash_sees_every_label_and_position_but_not_the_order(tiny_dataset, tmp_path):
    """The hash guards every cache and the reference comparison: one force component, one
    energy, one position or a recorded failure changes it; writing the frames in another order
    does not."""
    same = _edited_copy(tiny_dataset, tmp_path / "same.db")
    assert same == DatasetStore(tiny_dataset).content_hash()
    assert _edited_copy(tiny_dataset, tmp_path / "reversed.db", reverse=True) == same

    def force(index, atoms, energy, forces):
        if index == 3:
            forces[1, 2] += 1e-9
        return energy, forces

    def energy(index, atoms, energy, forces):
        return (energy + 1e-9 if index == 3 else energy), forces

    def position(index, atoms, energy, forces):
        if index == 3:
            atoms.positions[0, 0] += 1e-9
        return energy, forces

    hashes = {same}
    for name, edit in (("force", force), ("energy", energy), ("position", position)):
        hashes.add(_edited_copy(tiny_dataset, tmp_path / f"{name}.db", edit))
    assert len(hashes) == 4  # each edit changes the hash, and to a different one
    failed = DatasetStore(tmp_path / "same.db", write=True)
    failed.record_failure("0:train:0", 99, "C", "train", "SCF not converged")
    assert failed.content_hash() not in hashes


class _Row:
    """What hash_content reads of an ASE row: keys, arrays and get()."""

    def __init__(self, keys, energy=-1.5):
        self.key_value_pairs = keys
        self.numbers = np.array([8, 1, 1])
        self.positions = np.arange(9.0).reshape(3, 3)
        self.cell = np.zeros((3, 3))
        self.pbc = np.zeros(3, dtype=bool)
        self._data = {"energy": energy, "forces": np.ones((3, 3))}

    def get(self, name, default=None):
        return self._data.get(name, default)


def test_content_hash_ignores_the_order_of_keys_in_every_dictionary():
    """Metadata, frame keys and failures written with their keys in another order (another
    program, another json library) are the same content."""
    from gmdbench.data.content_hash import hash_content

    frame = {"trajectory_id": "t0", "frame": 0, "smiles": "O", "split": "train"}
    failure = {"trajectory_id": "t0", "frame": 1, "reason": "SCF"}
    reference = hash_content({"task": "a", "seed": 0}, [_Row(frame)], [failure])
    assert hash_content({"seed": 0, "task": "a"}, [_Row(frame)], [failure]) == reference
    assert hash_content({"task": "a", "seed": 0}, [_Row(dict(reversed(frame.items())))],
                        [failure]) == reference
    assert hash_content({"task": "a", "seed": 0}, [_Row(frame)],
                        [dict(reversed(failure.items()))]) == reference
    # and what is not the order does count: a volatile key does not, a value does
    assert hash_content({"task": "a", "seed": 0, "created": "today"}, [_Row(frame)],
                        [failure]) == reference
    assert hash_content({"task": "a", "seed": 1}, [_Row(frame)], [failure]) != reference
    assert hash_content({"task": "a", "seed": 0}, [_Row(frame, energy=-1.6)],
                        [failure]) != reference


@pytest.mark.parametrize("change", [b"x" * 10 + b"y", b"x" * 5], ids=["grows", "shrinks"])
def test_a_file_that_changes_while_it_is_hashed_is_not_remembered(tmp_path, change):
    """The stamp is read before and after hashing: a file written meanwhile (a build still
    running, or a vacuum that shrinks it) gets its hash computed but not remembered under
    either stamp. The stamps must be equal, not merely ordered: a shrunk file's stamp sorts
    before the one read first."""
    import os

    from gmdbench.data import content_hash

    data = tmp_path / "growing.db"
    data.write_bytes(b"x" * 10)
    os.utime(data, (1_000_000, 1_000_000))  # long ago: old enough to be remembered

    def compute_while_growing():
        data.write_bytes(change)  # rewritten in place: same inode, another size
        os.utime(data, (1_000_000, 1_000_000))
        return "digest"

    before = content_hash.file_stamp(data)
    assert content_hash.remembered_hash(data, compute_while_growing) == "digest"
    assert before not in content_hash._HASHES
    assert content_hash.file_stamp(data) not in content_hash._HASHES
    # unchanged while hashed: remembered
    assert content_hash.remembered_hash(data, lambda: "again") == "again"
    assert content_hash._HASHES[content_hash.file_stamp(data)] == "again"


def test_a_fresh_write_ahead_log_keeps_an_old_dataset_from_being_remembered(tmp_path,
                                                                            monkeypatch):
    """During a build the frames land in the -wal file first: the dataset file can be old while
    its log is seconds old, and then nothing may be remembered."""
    import os

    from gmdbench.data import content_hash

    data = tmp_path / "building.db"
    data.write_bytes(b"x")
    wal = tmp_path / "building.db-wal"
    wal.write_bytes(b"frames")
    now = 1_700_000_000 * 10**9
    os.utime(data, ns=(now - 3600 * 10**9, now - 3600 * 10**9))
    os.utime(wal, ns=(now, now))
    monkeypatch.setattr(content_hash.time, "time_ns", lambda: now)
    content_hash.remembered_hash(data, lambda: "mid-build")
    assert content_hash.file_stamp(data) not in content_hash._HASHES
    os.utime(wal, ns=(now - 3600 * 10**9, now - 3600 * 10**9))  # the log is old too now
    content_hash.remembered_hash(data, lambda: "settled")
    assert content_hash._HASHES[content_hash.file_stamp(data)] == "settled"


def test_the_definition_hash_is_the_canonical_json_of_its_five_keys():
    """sha256 of the sorted-key JSON of task, preset, reference, seed and level of theory:
    committed archives (reference/datasets/definitions.json) depend on this exact form; any
    other metadata is left out, and a dataset missing one key (imported frames) has none."""
    import hashlib
    import json

    from gmdbench.data.content_hash import definition_hash

    metadata = {"seed": 0, "task": "fragment_duplication", "preset": "standard",
                "reference": "gfn2-xtb", "level_of_theory": "GFN2-xTB (tblite 0.4.0)",
                "created": "today"}
    canonical = ('{"level_of_theory": "GFN2-xTB (tblite 0.4.0)", "preset": "standard", '
                 '"reference": "gfn2-xtb", "seed": 0, "task": "fragment_duplication"}')
    assert definition_hash(metadata) == hashlib.sha256(canonical.encode()).hexdigest()
    assert json.loads(canonical) == {k: v for k, v in metadata.items() if k != "created"}
    assert definition_hash({k: v for k, v in metadata.items() if k != "seed"}) is None
