"""Devices and clusters, on whatever machine runs the suite: ``auto`` is what torch sees (a GPU
where there is one), a GPU that is not there is refused in one line (tested where CUDA is
absent), a GPU that is there gives the CPU's numbers to float32 precision (tested where it is
present), and the SLURM job script carries the configured resources (a dry run)."""

from __future__ import annotations

import json
import sys

import pytest
import torch
import yaml

from gmdbench.cli import main
from gmdbench.config import SlurmClusterConfig, TrainConfig
from gmdbench.data.store import DatasetStore
from gmdbench.errors import ClusterError, DeviceError
from gmdbench.models.base import resolve_device
from gmdbench.pipeline.clusters import ClusterSpec, check_cluster, slurm_job_script
from gmdbench.runner.executor import evaluate_run, train_run
from gmdbench.runner.results import ResultsStore
from gmdbench.runner.runs import RunConfig
from tests_support import DATA

CUDA = torch.cuda.is_available()
needs_no_cuda = pytest.mark.skipif(CUDA, reason="refusing a missing GPU needs a machine "
                                   "without one")


def test_auto_is_what_torch_sees_and_a_missing_gpu_is_refused():
    assert resolve_device("auto") == torch.device("cuda" if CUDA else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    missing = [f"cuda:{torch.cuda.device_count()}"] if CUDA else ["cuda", "cuda:0", "cuda:3"]
    for spec in missing:  # beyond the GPUs there are (or any GPU, where there is none)
        with pytest.raises(DeviceError, match=f"'{spec}' requested but"):
            resolve_device(spec)
    with pytest.raises(DeviceError, match="unknown device 'gpu'"):
        resolve_device("gpu")


def test_cpu_and_auto_give_identical_metrics_and_record_the_device(tiny_dataset, tmp_path):
    """The device is recorded with the run but is not part of its hash."""
    run = RunConfig(task="tiny_alkanes", model="mace",
                    model_options={"hidden_irreps": "8x0e + 8x1o", "radial_mlp": [8, 8]},
                    training=TrainConfig(epochs=2, batch_size=4),
                    dataset_hash=DatasetStore(tiny_dataset).content_hash())
    metrics = {}
    for device in ("cpu", "auto"):
        run_dir = train_run(run, tiny_dataset, tmp_path / device, device=device)
        assert run_dir.name == run.run_dir(tmp_path / device).name  # same id on any device
        store = ResultsStore(tmp_path / device / "results.db")
        metrics[device] = evaluate_run(run_dir, store, device)
        recorded = json.loads((run_dir / "training.json").read_text())["device"]
        expected = "cuda" if device == "auto" and CUDA else "cpu"
        assert recorded.startswith(expected), recorded  # cuda:0 (its name) on a GPU
        (record,) = store.runs()
        assert record["timings"]["train_device"] == record["timings"]["evaluate_device"] == \
            recorded
    for split in ("id_test", "ood_test"):
        for name, value in metrics["cpu"][split]["all"].items():
            if CUDA:  # another device sums in another order: float32 precision, not bits
                assert metrics["auto"][split]["all"][name] == pytest.approx(
                    value, rel=1e-3, abs=1e-5), (split, name)
            else:
                assert value == metrics["auto"][split]["all"][name], (split, name)


def test_a_batch_is_made_on_the_asked_device(tiny_dataset):
    from gmdbench.data.graphs import graphset_from_store

    graphs, _ = graphset_from_store(DatasetStore(tiny_dataset), "train", 4.0)
    for _, batch in graphs.batches(4, torch.float64, device="cpu"):
        assert all(t.device.type == "cpu" for t in (batch.positions, batch.edge_index,
                                                     batch.numbers, batch.forces))
        assert batch.positions.dtype == torch.float64


SLURM_YAML = """\
cores: 8
memory: 64GB
walltime: "12:00:00"
gpus_per_job: 1
queue: gpu
account: chem-mlip
max_jobs: 3
job_directives: ["--constraint=a100"]
job_script_prologue: ["module load cuda/12.4"]
"""


def test_the_slurm_job_script_carries_the_configured_resources():
    script = slurm_job_script(SlurmClusterConfig.model_validate(yaml.safe_load(SLURM_YAML)))
    for line in ("#SBATCH -p gpu", "#SBATCH -A chem-mlip", "#SBATCH --cpus-per-task=8",
                 "#SBATCH -t 12:00:00", "#SBATCH --gres=gpu:1", "#SBATCH --constraint=a100",
                 "module load cuda/12.4"):
        assert line in script, line
    assert "--nthreads 1" in script  # one training at a time on the job's GPU


def test_gmd_run_on_slurm_without_slurm_prints_the_job_script(tmp_path, capsys, monkeypatch):
    config = tmp_path / "slurm.yaml"
    config.write_text(SLURM_YAML)
    monkeypatch.setattr(sys, "argv", ["gmd", "run", "quick", "--executor", "dask", "--cluster",
                                      "slurm", "--cluster-config", str(config),
                                      "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "#SBATCH --gres=gpu:1" in out and "#SBATCH --mem=" in out
    assert "nothing submitted; 2 such job(s) would serve 2 runs" in out
    assert not (tmp_path / "out").exists()  # a dry run builds nothing


@pytest.mark.parametrize(("arguments", "named"), [
    pytest.param(["run", "quick", "--executor", "dask", "--gpus", "1"], "--gpus 1 requested",
                 marks=needs_no_cuda),
    (["run", "quick", "--gpus", "1"], "--executor dask"),
    (["run", "quick", "--executor", "dask", "--cluster", "slurm"], "--cluster-config"),
    (["run", "quick", "--device", f"cuda:{torch.cuda.device_count() if CUDA else 1}"],
     "requested"),
    pytest.param(["train", "--task", str(DATA / "tiny_task.yaml"), "--model", "schnet",
                  "--data", "x.db", "--device", "cuda"], "'cuda' requested",
                 marks=needs_no_cuda),
    (["evaluate", "run", "--device", "tpu"], "unknown device 'tpu'"),
])
def test_gpu_and_cluster_paths_refuse_cleanly_here(arguments, named, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["gmd", *arguments])
    with pytest.raises(SystemExit) as exit_info:
        main()
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and named in lines[0], lines


def test_a_slurm_cluster_needs_sbatch(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    spec = ClusterSpec(kind="slurm", slurm=SlurmClusterConfig(cores=2, memory="4GB"))
    with pytest.raises(ClusterError, match="no sbatch"):
        check_cluster(spec)
