"""Mutation testing of the core modules with cosmic-ray: which changes to the code no test sees.

Why cosmic-ray (pinned 8.7.0, `pip install -e '.[mutation]'`): it mutates one module at a time
in place and runs any test command against it, so each core module is checked against only the
tests that are meant to guard it (seconds per mutant, not the whole suite), and its sessions are
SQLite files that resume where a stopped run ended (`--recheck-survivors` reruns only a
session's survivors after tests were added). mutmut 3 instead rewrites the package into a
trampolined copy, which the editable src/ install of this project does not import.

The working tree is never touched: the modules are mutated in a copy (src/, tests/, pyproject)
under --work, imported first through PYTHONPATH. Survivors are printed with their diff; the
ones judged equivalent (no test could tell them apart from the original, e.g. a tolerance
changed where no value sits near it) are listed with the reason in bench/mutation_equivalent.txt
as ``module line operator occurrence: why`` and reported apart. Session fixtures that a
module's mutants cannot change (CACHED_FIXTURES, checked by import) are built once per run by
the unmutated code, not once per mutant. Not in CI: it is slow.

Usage: python bench/mutation.py [--modules metrics,uncertainty] [--work DIR] [--jobs 1]
       [--recheck-survivors] [--save-sessions]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import lzma
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from gmdbench.files import atomic_path

ROOT = Path(__file__).resolve().parents[1]
COSMIC_RAY = str(Path(sys.executable).parent / "cosmic-ray")  # this environment's
EQUIVALENT = ROOT / "bench" / "mutation_equivalent.txt"
# finished or stopped sessions, compressed, so that a run of hours continues in a later checkout
SAVED_SESSIONS = ROOT / "bench" / "mutation-sessions"
# core module -> the tests meant to guard it (issue 29's list)
MODULES: dict[str, tuple[str, list[str]]] = {
    "metrics": ("src/gmdbench/evaluation/metrics.py",
                ["tests/evaluation/test_metrics.py",
                 "tests/evaluation/test_uncertainty_scores.py"]),
    # its functions are pure: their unit tests guard them (the active-learning loop's tests
    # train models, a minute per surviving mutant, and check the loop, not the scores)
    "uncertainty": ("src/gmdbench/evaluation/uncertainty.py",
                    ["tests/evaluation/test_uncertainty_scores.py",
                     "tests/evaluation/test_calibration.py",
                     "tests/pipeline/test_active_learning.py::test_identical_members_have_zero_"
                     "spread_and_calibration_is_measured"]),
    "splits": ("src/gmdbench/tasks/split.py", ["tests/tasks/test_split.py"]),
    # the rules' own tests (the study tests train models: minutes per mutant, and they check
    # the loop, not which frames a rule picks)
    "acquisition": ("src/gmdbench/active/acquisition.py",
                    ["tests/pipeline/test_acquisition_batches.py",
                     "tests/pipeline/test_active_learning.py::test_random_rule_is_seeded_and_"
                     "draws_from_the_candidates",
                     "tests/pipeline/test_active_learning.py::test_largest_rule_picks_the_top_"
                     "scores",
                     "tests/pipeline/test_active_learning.py::test_farthest_point_rule_spreads_"
                     "a_batch"]),
    "reference_energies": ("src/gmdbench/training/reference_energies.py",
                           ["tests/training/test_reference_energies.py",
                            "tests/training/test_trainer.py"]),
    "atomic_spin": ("src/gmdbench/reference/atomic_spin.py",
                    ["tests/reference/test_reference.py"]),
    # issue 29's "reference labelling": which method labels a frame, at which charge and spin,
    # with which retries, and the isolated-atom energies
    "reference_labelling": ("src/gmdbench/reference/registry.py",
                            ["tests/reference/test_reference.py"]),
    "why_ratios": ("src/gmdbench/report/why_ratios.py", ["tests/report/test_why_ratios.py"]),
    "dataset_hash": ("src/gmdbench/data/content_hash.py", ["tests/data/test_store.py"]),
    # the adapter tests run every architecture: only DeepSet-MoE's cases guard this module;
    # the cheap ones first (with -x a mutant stops at its first failure), the 5 s overfits last
    "deepset_moe": ("src/gmdbench/models/deepset_moe.py",
                    ["tests/analysis/test_routing.py",
                     "tests/models/test_adapters.py::test_forces_are_minus_the_energy_gradient",
                     "tests/models/test_adapters.py::test_node_features_are_invariant_under_"
                     "rotation_and_translation",
                     "tests/models/test_adapters.py::test_adapter_overfits_four_structures",
                     "-k", "deepset or router or routing or energy_share or spatial"]),
    # the archive's recompute: metrics rebuilt from committed predictions, compaction, partials
    "archive": ("src/gmdbench/runner/archive.py", ["tests/runner/test_archive.py"]),
    # issue 28's statistics
    "calibration": ("src/gmdbench/evaluation/calibration.py",
                    ["tests/evaluation/test_calibration.py"]),
    "paired": ("src/gmdbench/evaluation/paired.py", ["tests/evaluation/test_paired.py"]),
    "overlap": ("src/gmdbench/active/overlap.py", ["tests/pipeline/test_acquisition_batches.py"]),
}

# The tests' session fixtures (tests/conftest.py) that a module's mutants cannot change, so one
# build serves every mutant (GMD_TEST_FIXTURE_CACHE): "tiny" is the tiny dataset (MD and
# GFN2-xTB labels), "runs" three models trained, evaluated and recorded on it. That is ~16 s of
# an archive mutant's ~35 s and ~8 s of a DeepSet-MoE one's. A fixture is cached for a module
# only if the packages that build it never import that module (_fixtures_independent_of
# checks it before every run): deepset_moe is a model the "runs" registry loads, so it keeps
# its "runs" fresh (its tests do not use them anyway).
CACHED_FIXTURES: dict[str, tuple[str, ...]] = {"archive": ("tiny", "runs"),
                                               "deepset_moe": ("tiny",)}
FIXTURE_BUILDERS: dict[str, tuple[str, ...]] = {
    "tiny": ("gmdbench.data", "gmdbench.reference", "gmdbench.tasks"),
    "runs": ("gmdbench.data", "gmdbench.reference", "gmdbench.tasks", "gmdbench.models",
             "gmdbench.training", "gmdbench.evaluation", "gmdbench.runner.executor",
             "gmdbench.runner.results", "gmdbench.runner.runs"),
}


def _fixtures_independent_of(module: str, fixtures: tuple[str, ...],
                             env: dict[str, str]) -> bool:
    """Whether importing every module of the packages that build ``fixtures`` (submodules
    included, so lazily loaded model adapters count) leaves ``module`` (a src/ path)
    unimported: then no such fixture can run its code."""
    dotted = module.removeprefix("src/").removesuffix(".py").replace("/", ".")
    builders = sorted({name for fixture in fixtures for name in FIXTURE_BUILDERS[fixture]})
    probe = ("import importlib, pkgutil, sys\n"
             f"for name in {builders!r}:\n"
             "    top = importlib.import_module(name)\n"
             "    for info in pkgutil.walk_packages(getattr(top, '__path__', []), name + '.'):\n"
             "        importlib.import_module(info.name)\n"
             f"print({dotted!r} in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    return out[-1] == "False"


def _copy_tree(work: Path) -> None:
    """src/, tests/ and pyproject.toml of the working tree, fresh, under ``work``."""
    for name in ("src", "tests"):
        shutil.rmtree(work / name, ignore_errors=True)
        shutil.copytree(ROOT / name, work / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copyfile(ROOT / "pyproject.toml", work / "pyproject.toml")


def _annotation_spans(module: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) (row, column) of every annotation of a module that postpones them (PEP 563,
    ``from __future__ import annotations``): there an annotation is a string that runs only if
    something evaluates it (pydantic does, and then a broken one fails at import, killed), so a
    mutant inside one that survives is equivalent by construction, not by judgement."""
    tree = ast.parse(module.read_text())
    postponed = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                    and any(alias.name == "annotations" for alias in node.names)
                    for node in tree.body)
    if not postponed:
        return []
    annotations = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            annotations.append(node.returns)
        elif isinstance(node, ast.AnnAssign) or (isinstance(node, ast.arg) and node.annotation):
            annotations.append(node.annotation)
    return [((a.lineno, a.col_offset), (a.end_lineno, a.end_col_offset)) for a in annotations]


def _equivalent() -> dict[tuple[str, int, str, int], str]:
    known = {}
    if EQUIVALENT.exists():
        for line in EQUIVALENT.read_text().splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            where, why = line.split(":", 1)
            module, number, operator, occurrence = where.split()
            known[(module, int(number), operator, int(occurrence))] = why.strip()
    return known


def _digests(module: str, tests: list[str]) -> dict[str, str]:
    """SHA-256 of the module and of its test files (node ids name their file, options such as
    ``-k`` none), apart: a recheck needs the same mutants (module) but new tests."""
    files = [file for file in dict.fromkeys(path.split("::")[0] for path in tests)
             if file.endswith(".py")]
    return {"module": hashlib.sha256((ROOT / module).read_bytes()).hexdigest(),
            "tests": hashlib.sha256(b"".join((ROOT / path).read_bytes()
                                             for path in files)).hexdigest()}


def _read_stamp(stamp: Path) -> dict[str, str]:
    """The digests a session was run with; {} where there are none (or an older plain stamp)."""
    try:
        found = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _forget_survivors(session: Path) -> int:
    """Drop the survivors' results from a cosmic-ray session so that `exec` runs them again
    (SQL on cosmic-ray 8.7.0's own schema, pinned: its WorkDB has no call that removes a result)."""
    with sqlite3.connect(session) as db:
        return db.execute("DELETE FROM work_results WHERE test_outcome = 'SURVIVED'").rowcount


def save_sessions(work: Path, names: list[str]) -> list[str]:
    """Compress each module's session and its stamp from ``work`` into SAVED_SESSIONS (atomic
    writes): a stopped run of hours resumes from them in a fresh checkout. Returns those saved."""
    saved = []
    SAVED_SESSIONS.mkdir(parents=True, exist_ok=True)
    for name in names:
        session, stamp = work / f"{name}.sqlite", work / f"{name}.sha256"
        if not session.exists() or not _read_stamp(stamp):
            continue
        for target, data in ((SAVED_SESSIONS / f"{name}.sqlite.xz",
                              lzma.compress(session.read_bytes())),
                             (SAVED_SESSIONS / f"{name}.sha256", stamp.read_bytes())):
            with atomic_path(target) as temporary:
                temporary.write_bytes(data)
        saved.append(name)
    return saved


def _restore_session(name: str, work: Path) -> None:
    """A saved session (with the stamp it was run with) where ``work`` holds none."""
    saved = SAVED_SESSIONS / f"{name}.sqlite.xz"
    if (work / f"{name}.sqlite").exists() or not saved.exists():
        return
    (work / f"{name}.sqlite").write_bytes(lzma.decompress(saved.read_bytes()))
    shutil.copyfile(SAVED_SESSIONS / f"{name}.sha256", work / f"{name}.sha256")
    print(f"{name}: resuming the session saved in {saved.relative_to(ROOT)}")


def run_module(name: str, work: Path, jobs: int, recheck_survivors: bool = False) -> list[dict]:
    """Mutate one module in the copy under ``work``; return its survivors (resumes a session)."""
    module, tests = MODULES[name]
    config = work / f"{name}.toml"
    session = work / f"{name}.sqlite"
    command = f"{sys.executable} -m pytest -x -q -p no:cacheprovider {shlex.join(tests)}"
    config.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        "timeout = 300.0\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n')
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(work / "src"), str(work / "tests"), str(work / "tests" / "data")]),
           # the copy's tests find ../shared of the checkout, not of results/
           "GMD_TEST_SHARED": str(ROOT.parent / "shared")}
    # a session resumes only for the same module and tests: mutants of an edited module (or
    # results against edited tests) would be stale, so a change starts it afresh; with
    # recheck_survivors, tests that changed only re-run the mutants that survived
    stamp = work / f"{name}.sha256"
    digests = _digests(module, tests)
    _restore_session(name, work)
    if session.exists():
        before = _read_stamp(stamp)
        if recheck_survivors and before.get("module") == digests["module"]:
            print(f"{name}: rechecking {_forget_survivors(session)} survivor(s) against the "
                  "current tests (killed mutants are not rerun: valid where tests were only "
                  "added or sharpened)")
        elif before != digests:
            print(f"{name}: module or tests changed since its session; starting it afresh")
            session.unlink()
    stamp.write_text(json.dumps(digests))
    if name in CACHED_FIXTURES:
        fixtures = CACHED_FIXTURES[name]
        if not _fixtures_independent_of(module, fixtures, env):
            raise SystemExit(f"{name}: the builders of fixtures {', '.join(fixtures)} import "
                             f"{module}; take them out of CACHED_FIXTURES")
        cache = work / f"{name}-fixtures"
        shutil.rmtree(cache, ignore_errors=True)
        env["GMD_TEST_FIXTURE_CACHE"] = str(cache)
        env["GMD_TEST_CACHED_FIXTURES"] = ",".join(fixtures)
        # built by the unmutated code, which must pass its tests (a failing baseline would
        # count every mutant as killed)
        baseline = subprocess.run(shlex.split(command), cwd=work, env=env)
        if baseline.returncode != 0:
            raise SystemExit(f"{name}: the tests fail on the unmutated code")
    if not session.exists():
        subprocess.run([COSMIC_RAY, "init", str(config), str(session)], cwd=work, env=env,
                       check=True)
    subprocess.run([COSMIC_RAY, "exec", str(config), str(session)], cwd=work, env=env,
                   check=True)
    spans = _annotation_spans(ROOT / module)
    dump = subprocess.run([COSMIC_RAY, "dump", str(session)], cwd=work, env=env, check=True,
                          capture_output=True, text=True).stdout
    survivors = []
    for line in dump.splitlines():
        item, result = json.loads(line)
        if result and result.get("test_outcome") == "survived":
            mutation = item["mutations"][0]
            start = tuple(mutation["start_pos"])
            survivors.append({"module": name, "line": start[0],
                              "operator": mutation["operator_name"],
                              "occurrence": mutation["occurrence"],
                              "in_annotation": any(low <= start < high for low, high in spans),
                              "diff": result.get("diff", "")})
    return survivors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modules", default=",".join(MODULES),
                        help=f"comma-separated, of: {', '.join(MODULES)}")
    parser.add_argument("--work", type=Path, default=ROOT / "results" / "mutation")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--recheck-survivors", action="store_true",
                        help="where only tests changed, rerun just the survivors of the last "
                             "session (the module must be unchanged)")
    parser.add_argument("--save-sessions", action="store_true",
                        help="compress the sessions under --work into bench/mutation-sessions "
                             "(to commit) and exit; a later run resumes from them")
    args = parser.parse_args()
    args.work = args.work.resolve()  # cosmic-ray runs inside it: relative paths would break
    names = args.modules.split(",")
    unknown = [name for name in names if name not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    if args.save_sessions:
        saved = save_sessions(args.work, names)
        print(f"saved: {', '.join(saved) or 'none'} (in {SAVED_SESSIONS.relative_to(ROOT)})")
        return
    args.work.mkdir(parents=True, exist_ok=True)
    _copy_tree(args.work)
    known = _equivalent()
    unexplained = 0
    for name in names:
        survivors = run_module(name, args.work, args.jobs, args.recheck_survivors)
        annotated = [s for s in survivors if s["in_annotation"]]
        survivors = [s for s in survivors if not s["in_annotation"]]
        explained = [s for s in survivors if (name, s["line"], s["operator"].split("/")[-1],
                                              s["occurrence"]) in known]
        print(f"{name}: {len(survivors) + len(annotated)} survivor(s), {len(annotated)} inside "
              f"postponed annotations (equivalent by construction), {len(explained)} listed as "
              "equivalent")
        for survivor in survivors:
            key = (name, survivor["line"], survivor["operator"].split("/")[-1],
                   survivor["occurrence"])
            if key in known:
                print(f"  equivalent {key[1]} {key[2]} {key[3]}: {known[key]}")
                continue
            unexplained += 1
            print(f"  SURVIVED line {key[1]} {survivor['operator']} #{key[3]}")
            print("    " + "\n    ".join(survivor["diff"].splitlines()))
    print(f"unexplained survivors: {unexplained}")
    sys.exit(1 if unexplained else 0)


if __name__ == "__main__":
    main()
