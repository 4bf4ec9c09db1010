"""Training checkpoints: everything a resumed run needs to end exactly where an unbroken one ends.

A checkpoint directory `checkpoints/step-<n>/` holds the LoRA weights
(`adapter.safetensors`, fp32, exact), the optimizer and scheduler states and torch's RNG
state (`state.pt`, which dropout draws from), and `progress.json`: the step reached, the
losses so far, the seconds spent, and the sha256 of the batch plan (the data order), which a
resumed run recomputes from seed and data and must match. A checkpoint is written under a
temporary name and renamed into place, so a crash while writing leaves the previous one
whole; only the newest `keep` are kept.

Needs the `flywheel` extra: import this module only after `require_flywheel()`.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, save_file

CHECKPOINTS = "checkpoints"
_PREFIX = "step-"


@dataclass(frozen=True)
class Progress:
    """Where a run stood at a checkpoint."""

    step: int
    plan_sha256: str
    losses: list[dict[str, Any]]
    seconds: float
    resumed_at: list[int]


def checkpoint_root(output: Path) -> Path:
    """Where a run's checkpoints live."""
    return output / CHECKPOINTS


def latest_checkpoint(output: Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = checkpoint_root(output)
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.name.startswith(_PREFIX) and p.is_dir())
    return done[-1] if done else None


def save_checkpoint(
    output: Path,
    *,
    model: PeftModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    progress: Progress,
    keep: int,
) -> Path:
    """Write a checkpoint for `progress.step`; drop all but the newest `keep`."""
    root = checkpoint_root(output)
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{_PREFIX}{progress.step:07d}"
    partial = root / f".partial-{progress.step:07d}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    weights = {
        k: v.detach().contiguous()
        for k, v in get_peft_model_state_dict(model, save_embedding_layers=False).items()
    }
    save_file(weights, str(partial / "adapter.safetensors"))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "python_rng": random.getstate(),
        },
        partial / "state.pt",
    )
    (partial / "progress.json").write_text(
        json.dumps(
            {
                "step": progress.step,
                "plan_sha256": progress.plan_sha256,
                "losses": progress.losses,
                "seconds": progress.seconds,
                "resumed_at": progress.resumed_at,
            },
            indent=1,
        ),
        "utf-8",
    )
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    for old in sorted(p for p in root.iterdir() if p.name.startswith(_PREFIX))[:-keep]:
        shutil.rmtree(old)
    return final


def load_checkpoint(
    path: Path,
    *,
    model: PeftModel,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> Progress:
    """Restore weights, optimizer, scheduler and RNG from `path`; return its progress."""
    set_peft_model_state_dict(model, load_file(str(path / "adapter.safetensors")))
    state = torch.load(path / "state.pt", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["torch_rng"])
    random.setstate(_as_random_state(state["python_rng"]))
    data = json.loads((path / "progress.json").read_text("utf-8"))
    return Progress(
        step=int(data["step"]),
        plan_sha256=str(data["plan_sha256"]),
        losses=list(data["losses"]),
        seconds=float(data["seconds"]),
        resumed_at=[int(s) for s in data["resumed_at"]],
    )


def _as_random_state(value: Any) -> tuple[Any, ...]:
    # torch.load returns the tuple's inner tuple as a list under weights_only on some versions.
    version, internal, gauss = value
    return (version, tuple(internal), gauss)
