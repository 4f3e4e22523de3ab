"""The one trainer every model goes through.

Adam/AdamW with a reduce-on-plateau or cosine schedule, optional EMA of the weights, gradient
clipping, early stopping and checkpoint choice on ``val`` only (an OOD set never steers
training). A checkpoint is written after every epoch; a killed run resumed from it reaches the
same result as an uninterrupted one, because every random step is seeded by (seed, epoch).

An ``observe`` hook sees the (EMA) weights every few epochs to record a learning curve on test
frames; what it returns is stored and nothing else reads it (no choice of the trainer depends
on it), which is what lets a report show OOD error along training without OOD data steering it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from gmdbench.config import TrainConfig
from gmdbench.data.graphs import GraphSet
from gmdbench.errors import CheckpointError
from gmdbench.files import load_state, load_torch, save_torch
from gmdbench.models.base import DTYPES, Potential
from gmdbench.training.losses import LOSSES

log = logging.getLogger(__name__)


class ExponentialMovingAverage:
    """Shadow weights w_ema <- d_n * w_ema + (1 - d_n) * w, swapped in for validation.

    The decay warms up as torch_ema and mace do: d_n = min(decay, (1 + n) / (10 + n)) after n
    updates. A fixed decay from step 0 would keep ~0.99^n of the random initial weights in the
    average, so early validation losses (which drive the learning-rate schedule and early
    stopping) and short runs' final weights would carry weights no step ever chose.
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay = decay
        self.updates = 0
        self.parameters = [p for p in module.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.parameters]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        decay = self.current_decay()
        self.updates += 1
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.parameters], 1.0 - decay)

    @contextmanager
    def applied(self) -> Iterator[None]:
        backup = [p.detach().clone() for p in self.parameters]
        with torch.no_grad():
            for p, s in zip(self.parameters, self.shadow, strict=True):
                p.copy_(s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, b in zip(self.parameters, backup, strict=True):
                    p.copy_(b)

    def state_dict(self) -> dict:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.shadow = [s.clone() for s in state["shadow"]]
        self.updates = int(state["updates"])


def evaluate_loss(potential: Potential, graphs: GraphSet, config: TrainConfig,
                  device: torch.device | None = None) -> dict[str, float]:
    """Mean loss terms over a set (used for val): energy-per-atom and force MSE (per frame), and
    the force MAE over every atom and component (the metric a convergence check watches)."""
    keys = ("loss", "energy_mse", "force_mse")
    potential.eval()
    device = device or next(potential.buffers()).device
    totals = torch.zeros(len(keys), dtype=torch.float64, device=device)  # summed on the device
    force_error = torch.zeros((), dtype=torch.float64, device=device)
    for index, batch in graphs.batches(config.batch_size, DTYPES[config.dtype], device=device):
        prediction = potential(batch)
        terms = LOSSES[config.loss](prediction, batch, config.energy_weight, config.force_weight)
        totals += torch.stack([terms[key].detach().to(torch.float64) for key in keys]) \
            * len(index)
        force_error += (prediction["forces"].detach() - batch.forces).abs().sum().to(
            torch.float64)
    values = dict(zip(keys, (totals / len(graphs)).tolist(), strict=True))  # one host copy
    values["force_mae"] = float(force_error) / (3 * int(graphs.n_atoms.sum()))
    return values


def train(
    potential: Potential,
    train_set: GraphSet,
    val_set: GraphSet,
    config: TrainConfig,
    seed: int,
    run_dir: Path,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    device: torch.device | str = "cpu",
    observe: Callable[[Potential], dict[str, float]] | None = None,
    observe_every: int = 0,
) -> dict:
    """Fit ``potential`` (resuming from ``run_dir/checkpoint.pt``); return the training summary.

    The best weights on val (EMA weights when EMA is on) are saved to ``run_dir/best.pt``.
    ``observe`` (analysis only) is called with the weights val sees after the first epoch and
    every ``observe_every`` epochs; its records form the summary's ``learning_curve``.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    if not potential.metadata.energy_defined and config.energy_weight:
        log.info("%s has no global energy: training on forces only", potential.metadata.name)
        config = config.model_copy(update={"energy_weight": 0.0})
    checkpoint_path, best_path = run_dir / "checkpoint.pt", run_dir / "best.pt"
    for torn in run_dir.glob(".*.pt.*.tmp"):  # a write a kill interrupted: never renamed
        torn.unlink()
    dtype = DTYPES[config.dtype]
    device = torch.device(device)
    potential.to(device=device, dtype=dtype)  # model, E0 and scale (E0 stays float64)
    parameters = [p for p in potential.parameters() if p.requires_grad]
    optimizer_class = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    optimizer = optimizer_class(parameters, lr=config.learning_rate,
                                weight_decay=config.weight_decay)
    scheduler = _scheduler(optimizer, config)
    ema = ExponentialMovingAverage(potential, config.ema_decay) if config.ema_decay else None
    state = {"epoch": 0, "best_val": float("inf"), "best_epoch": -1, "bad_epochs": 0,
             "history": [], "seconds": 0.0, "learning_curve": []}
    if checkpoint_path.exists():
        saved = load_torch(checkpoint_path)
        try:
            model_state, extra = saved["model"], (saved["optimizer"], saved["scheduler"],
                                                  saved["ema"], saved["state"])
        except (KeyError, TypeError) as error:
            raise CheckpointError(f"checkpoint {checkpoint_path} is not a gmd-bench training "
                                  "checkpoint; delete it to restart training") from error
        load_state(potential, model_state, checkpoint_path)
        optimizer.load_state_dict(extra[0])
        scheduler.load_state_dict(extra[1])
        if ema is not None:
            ema.load_state_dict(extra[2])
        state = saved["state"]
        log.info("resumed %s at epoch %d", run_dir, state["epoch"])

    while state["epoch"] < config.epochs and not _stopped_early(state, config):
        started = time.perf_counter()
        epoch = state["epoch"]
        potential.train()
        order = np.random.default_rng([seed, epoch]).permutation(len(train_set))
        # the running loss stays on the device: no host synchronisation per step
        running = torch.zeros((), dtype=torch.float64, device=device)
        seen = 0
        for index, batch in train_set.batches(config.batch_size, dtype, order, device):
            terms = LOSSES[config.loss](potential(batch), batch, config.energy_weight,
                                        config.force_weight)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if config.gradient_clip:
                torch.nn.utils.clip_grad_norm_(parameters, config.gradient_clip)
            optimizer.step()
            if ema is not None:
                ema.update()
            running += terms["loss"].detach().to(torch.float64) * len(index)
            seen += len(index)
        with ema.applied() if ema is not None else _nothing():
            val = evaluate_loss(potential, val_set, config, device)
            improved = val["loss"] < state["best_val"]
            if improved:
                save_torch(potential.state_dict(), best_path)
            if observe is not None and observe_every and (epoch % observe_every == 0
                                                          or epoch + 1 == config.epochs):
                state.setdefault("learning_curve", []).append(
                    {"epoch": epoch, **observe(potential)})
        if config.schedule == "cosine":
            scheduler.step()
        else:
            scheduler.step(val["loss"])
        record = {"epoch": epoch, "train_loss": float(running) / seen, "val_loss": val["loss"],
                  "val_energy_mse": val["energy_mse"], "val_force_mse": val["force_mse"],
                  "val_force_mae": val["force_mae"],
                  "learning_rate": optimizer.param_groups[0]["lr"]}
        state["history"].append(record)
        if improved:
            state.update(best_val=val["loss"], best_epoch=epoch, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        state["epoch"] = epoch + 1
        state["seconds"] += time.perf_counter() - started
        save_torch({"model": potential.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "ema": ema.state_dict() if ema is not None else {}, "state": state},
                   checkpoint_path)
        if on_epoch:
            on_epoch(epoch, record)
    load_state(potential, load_torch(best_path, "weights"), best_path)
    return {"epochs_run": state["epoch"], "best_epoch": state["best_epoch"],
            "best_val_loss": state["best_val"], "train_seconds": state["seconds"],
            "stopped_early": _stopped_early(state, config),
            "converged": converged(state["history"]),
            "status": training_status(state["history"]),
            "history": state["history"], "learning_curve": state.get("learning_curve", [])}


def _scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig
               ) -> torch.optim.lr_scheduler.LRScheduler:
    """Cosine from the learning rate to ``min_learning_rate`` over ``epochs`` (stepped once an
    epoch), or reduce-on-plateau on the val loss."""
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=config.epochs, eta_min=config.min_learning_rate)
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.plateau_factor, patience=config.plateau_patience,
        min_lr=config.min_learning_rate)


CONVERGENCE_WINDOW = 0.2  # the last fifth of the epochs run
CONVERGENCE_TOLERANCE = 0.02  # improved by less than 2% there


def converged(history: list[dict], window: float = CONVERGENCE_WINDOW,
              tolerance: float = CONVERGENCE_TOLERANCE) -> bool:
    """Whether the val force MAE curve is flat: its best over the last ``window`` of the epochs
    improves on its best before them by less than ``tolerance`` (relative). Fewer than 5
    epochs, or a history without val force MAE, cannot show it: False."""
    maes = [record["val_force_mae"] for record in history if "val_force_mae" in record]
    if len(maes) < 5 or len(maes) != len(history):
        return False
    last = max(1, math.ceil(window * len(maes)))
    before, after = min(maes[:-last]), min(maes[-last:])
    return (before - after) / before < tolerance


DIVERGENCE_FACTOR = 3.0  # a final val force MAE this many times its best: diverged
SPIKE_FACTOR = 100.0  # a train loss this many times the lowest before it: diverged
TRAINING_STATUSES = ("converged", "capped", "diverged")


def training_status(history: list[dict]) -> str:
    """What a training run's curves say it is (DESIGN §6):

    - ``diverged``: its final val force MAE is more than ``DIVERGENCE_FACTOR`` times its best,
      or a train loss jumped ``SPIKE_FACTOR`` times above the lowest before it (the best
      weights may be fine; the run still is not a converged one);
    - ``converged``: the val force MAE curve is flat (:func:`converged`);
    - ``capped``: still improving when it ran out of epochs (or too short to tell).
    A history without val force MAE cannot show any of it: ``capped``.
    """
    maes = [record.get("val_force_mae") for record in history]
    losses = [record.get("train_loss") for record in history]
    if maes and None not in maes and maes[-1] > DIVERGENCE_FACTOR * min(maes):
        return "diverged"
    if None not in losses and any(loss > SPIKE_FACTOR * min(losses[:i])
                                  for i, loss in enumerate(losses) if i):
        return "diverged"
    return "converged" if converged(history) else "capped"


def _stopped_early(state: dict, config: TrainConfig) -> bool:
    patience = config.early_stopping_patience
    return patience is not None and state["bad_epochs"] >= patience


@contextmanager
def _nothing() -> Iterator[None]:
    yield
