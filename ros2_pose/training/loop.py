"""The epoch loop every task shares: AdamW + one-cycle schedule, resume, per-epoch validation, logging.

A task supplies the model, a `step(batch_indices) -> (loss, {part: value})` closure and a
`validate() -> {metric: value}` closure; the loop owns ordering, optimisation, checkpoints and curves.
"""
from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np
import torch


#: What `training_device` accepts: "cpu", "cuda", "cuda:N", or "auto" (CUDA when PyTorch sees it).
DEVICE_CHOICES = "cpu, cuda, cuda:N or auto"


def training_device(name: str | None) -> torch.device:
    """The torch.device a trainer runs on, from `--device`; asking for CUDA where PyTorch sees none
    is an error here, before any data is loaded, not a silent fall back to a 100x slower CPU run."""
    name = (name or "cpu").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device {name!r}: expected {DEVICE_CHOICES}") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: expected {DEVICE_CHOICES}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: PyTorch sees no CUDA device here (torch {torch.__version__}, "
                             f"torch.cuda.is_available() is False); train with --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """Where a network's parameters are: the device its batches are copied to."""
    return next(model.parameters()).device


#: The phases of one optimisation step, timed by `timed_step` (seed 003's Table 1 columns).
STEP_PHASES = ("forward", "backward", "optimizer")


def timed_step(step: Callable[[np.ndarray], tuple[torch.Tensor, dict]], batch_indices: np.ndarray,
               optimizer: torch.optim.Optimizer, scheduler=None) -> tuple[torch.Tensor, dict, tuple[float, ...]]:
    """One optimisation step: (loss, parts, seconds of each of STEP_PHASES). Forward is the step
    closure (batch preparation, forward pass, losses); optimizer includes the schedule's step."""
    t0 = time.perf_counter()
    loss, parts = step(batch_indices)
    t1 = time.perf_counter()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    t2 = time.perf_counter()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    t3 = time.perf_counter()
    return loss, parts, (t1 - t0, t2 - t1, t3 - t2)


def fit(model: torch.nn.Module, num_samples: int, step: Callable[[np.ndarray], tuple[torch.Tensor, dict]],
        validate: Callable[[], dict[str, float]], config: dict[str, Any], run,
        resume_state: dict | None = None, describe: Callable[[dict], str] | None = None,
        progress: Callable[[str], None] = print) -> torch.nn.Module:
    """Train `model` for config['epochs'] epochs of shuffled batches of config['batch_size'] samples.

    `run` is a ros2_pose.training.run.TrainingRun: every epoch's row (train losses averaged over the
    epoch, validation metrics, learning rate, seconds) goes to its curves and checkpoints. The row
    also has the mean seconds per batch of each phase (seed 003's Table 1): `seconds_forward` (the
    step closure: batch preparation, forward pass and losses, e.g. a PnP layer's forward),
    `seconds_backward` and `seconds_optimizer` (optimizer and schedule step), and
    `seconds_validation` for the epoch's validation.
    """
    opt_cfg = config["optimizer"]
    epochs, batch = int(config["epochs"]), int(config["batch_size"])
    if num_samples < batch:
        raise ValueError(f"{num_samples} training samples are fewer than one batch of {batch}")
    total_steps = epochs * (num_samples // batch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt_cfg["lr"], weight_decay=opt_cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=opt_cfg["lr"], total_steps=total_steps,
                                                    pct_start=0.15)
    first_epoch = 0
    if resume_state is not None:
        started_with = resume_state["scheduler"].get("total_steps")
        if started_with != total_steps:
            # The learning-rate schedule spans the whole run; a resumed run must keep its shape.
            raise ValueError(f"cannot resume: the run was started for {started_with} optimisation steps, this "
                             f"config gives {total_steps} (epochs, batch size and data must stay the same)")
        model.load_state_dict(resume_state["model"])
        optimizer.load_state_dict(resume_state["optimizer"])
        scheduler.load_state_dict(resume_state["scheduler"])
        first_epoch = int(resume_state["epoch"]) + 1
    # The shuffling of epoch e depends only on (seed, e), so a resumed run sees the same batches.
    for epoch in range(first_epoch, epochs):
        model.train()
        order = np.random.default_rng([int(config["seed"]), epoch]).permutation(num_samples)
        started, sums, steps = time.perf_counter(), {}, 0
        phases = dict.fromkeys(STEP_PHASES, 0.0)
        for start in range(0, num_samples - batch + 1, batch):
            loss, parts, seconds = timed_step(step, np.sort(order[start:start + batch]), optimizer, scheduler)
            for phase, spent in zip(STEP_PHASES, seconds):
                phases[phase] += spent
            steps += 1
            for key, value in dict(parts, loss=loss.item()).items():
                sums[key] = sums.get(key, 0.0) + value
        validation_started = time.perf_counter()
        with torch.no_grad():
            metrics = validate()
        row = {"epoch": epoch, **{f"train_{k}": v / steps for k, v in sums.items()},
               **{f"val_{k}": v for k, v in metrics.items()}, "lr": scheduler.get_last_lr()[0],
               **{f"seconds_{phase}": total / steps for phase, total in phases.items()},
               "seconds_validation": time.perf_counter() - validation_started,
               "epoch_seconds": time.perf_counter() - started}
        best = run.log_epoch(row, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                   "scheduler": scheduler.state_dict(), "epoch": epoch})
        detail = describe(row) if describe else ""
        progress(f"epoch {epoch + 1}/{epochs}  loss {row['train_loss']:.4f}  {detail}  "
                 f"({row['epoch_seconds']:.0f} s){'  *best' if best else ''}")
    return model
