"""One fine-tune past its input checks: the optimizer loop, checkpoints, export and record.

`finetune.train` builds a `TrainingRun` once the data is tokenized and the `flywheel` extra is
known to be there; this module imports torch at its top for that reason. The run:

1. loads the base (or takes the one given) and wraps a copy with fresh LoRA layers;
2. fixes the batch of every step up front (`training_data.batch_plan`), hashed, so a resumed
   run can prove it continues the same data order;
3. resumes from the newest checkpoint when asked (after checking `checkpoints/run.json`:
   task, dataset, base, plan and settings must be this run's), else records them;
4. runs the steps, checkpointing every `checkpoint_every` and at the end;
5. exports `peft/` and `adapter.gguf` and writes `training.json`.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import peft
import torch
import transformers
from safetensors.torch import load_file

from skiff_contracts.domains import DRAFTS, Domain
from skiff_contracts.registry import schema_hash
from skiff_extraction.schema import decoding_schema
from skiff_flywheel import checkpoints, lora_training
from skiff_flywheel.artifacts import file_sha256
from skiff_flywheel.base_model import LoadedBase, load_base
from skiff_flywheel.dataset import Manifest
from skiff_flywheel.lora_export import export_adapter
from skiff_flywheel.training_config import BOOKKEEPING, TrainingConfig
from skiff_flywheel.training_data import Batch, TrainingSet, batch_plan, batches_per_epoch
from skiff_flywheel.training_record import (
    RECORD,
    BaseModelRef,
    DatasetRef,
    LossPoint,
    Machine,
    Throughput,
    TrainingRecord,
)
from skiff_flywheel.training_types import ResumeMismatch, StepReport, TrainingPlan, TrainingResult

RUN = "run.json"


@dataclass
class _Counts:
    sequence: int = 0
    evaluated: int = 0
    target: int = 0
    cpu_seconds: float = 0.0


@dataclass
class TrainingRun:
    """The inputs of one run, checked and tokenized."""

    task: str
    domain: Domain
    dataset: Path
    manifest: Manifest
    examples: int
    training_set: TrainingSet
    config: TrainingConfig
    output: Path
    model_path: Path
    base_model_id: str | None
    pad_token: int

    def execute(
        self,
        base: LoadedBase | None,
        *,
        resume: bool,
        on_plan: Callable[[TrainingPlan], None] | None,
        on_step: Callable[[StepReport], None] | None,
    ) -> TrainingResult:
        """Train (or continue), export, record; see the module docstring."""
        config = self.config
        torch.set_num_threads(config.threads)
        if base is None:
            base = load_base(self.model_path)
        elif base.sha256 != file_sha256(self.model_path):
            raise ValueError(f"the base model given is not {self.model_path}")
        sequences = self.training_set.sequences
        total = config.max_steps or config.epochs * batches_per_epoch(
            len(sequences), config.batch_size
        )
        lengths = [len(s.tokens) for s in sequences]
        plan = batch_plan(lengths, config.batch_size, seed=config.seed, steps=total)
        plan_sha = self._plan_sha256(plan)
        model = lora_training.lora_model(base.model, config)
        model.to(_device(config))
        model.train()
        optimizer = lora_training.optimizer_for(model, config)
        scheduler = lora_training.scheduler_for(optimizer, config, total)
        progress = self._start(resume, model, optimizer, scheduler, base.sha256, plan_sha)
        if on_plan is not None:
            on_plan(
                TrainingPlan(
                    total_steps=total,
                    start_step=progress.step,
                    sequences=len(sequences),
                    skipped=self.training_set.skipped,
                    sequence_tokens=self.training_set.tokens,
                    base_load_seconds=base.load_seconds,
                )
            )
        counts = _Counts()
        started = time.perf_counter()
        cpu_started = time.process_time()
        first = progress.step
        trainable = [p for p in model.parameters() if p.requires_grad]
        for step in range(first, total):
            step_started = time.perf_counter()
            batch = [sequences[i] for i in plan[step]]
            result = lora_training.batch_loss(
                model, batch, share_prefix=config.share_prefix, pad_token=self.pad_token
            )
            torch.autograd.backward(result.loss)
            torch.nn.utils.clip_grad_norm_(trainable, config.max_grad_norm)
            rate = float(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss = float(result.loss.detach())
            counts.sequence += sum(len(s.tokens) for s in batch)
            counts.evaluated += result.evaluated_tokens
            counts.target += result.target_tokens
            number = step + 1
            if number % config.log_every == 0 or number == total:
                point = LossPoint(
                    step=number, loss=loss, learning_rate=rate, target_tokens=result.target_tokens
                )
                progress.losses.append(point.model_dump())
            if number % config.checkpoint_every == 0 or number == total:
                checkpoints.save_checkpoint(
                    self.output,
                    model=model,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    progress=checkpoints.Progress(
                        number,
                        plan_sha,
                        progress.losses,
                        progress.seconds + time.perf_counter() - started,
                        progress.resumed_at,
                    ),
                    keep=config.keep_checkpoints,
                )
            if on_step is not None:
                on_step(StepReport(number, total, loss, rate, time.perf_counter() - step_started))
        seconds = time.perf_counter() - started
        counts.cpu_seconds = time.process_time() - cpu_started
        throughput = _throughput(total - first, seconds, counts)
        model.eval()
        files = export_adapter(
            model,
            self.output,
            heads=base.heads,
            architecture=base.architecture,
            alpha=config.alpha,
            name=f"{self.task} LoRA on {base.name}",
            base_model_id=self.base_model_id or str(self.model_path),
            dtype=config.export_dtype,
        )
        record = self._record(
            base, plan, progress, throughput, files, duration=progress.seconds + seconds
        )
        (self.output / RECORD).write_text(record.model_dump_json(indent=2) + "\n", "utf-8")
        return TrainingResult(self.output, record, resumed=bool(progress.resumed_at))

    def _start(
        self,
        resume: bool,
        model: peft.PeftModel,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        base_sha256: str,
        plan_sha256: str,
    ) -> checkpoints.Progress:
        """Restore the newest checkpoint (under `resume`) or record this run's identity."""
        identity = {
            "task": self.task,
            "dataset_sha256": self.manifest.sha256,
            "base_sha256": base_sha256,
            "plan_sha256": plan_sha256,
            "config": self.config.model_dump(mode="json", exclude=set(BOOKKEEPING)),
        }
        root = checkpoints.checkpoint_root(self.output)
        latest = checkpoints.latest_checkpoint(self.output) if resume else None
        if latest is None:
            root.mkdir(parents=True, exist_ok=True)
            (root / RUN).write_text(json.dumps(identity, indent=1, sort_keys=True), "utf-8")
            return checkpoints.Progress(0, plan_sha256, [], 0.0, [])
        saved_path = root / RUN
        if not saved_path.is_file():
            raise ResumeMismatch(f"{saved_path} is missing: these checkpoints cannot be checked")
        saved = json.loads(saved_path.read_text("utf-8"))
        changed = sorted(key for key in identity if saved.get(key) != identity[key])
        if changed:
            raise ResumeMismatch(f"cannot resume {self.output}: {', '.join(changed)} changed")
        progress = checkpoints.load_checkpoint(
            latest, model=model, optimizer=optimizer, scheduler=scheduler
        )
        if progress.plan_sha256 != plan_sha256:
            raise ResumeMismatch(f"{latest}: the data order differs from this run's")
        progress.resumed_at.append(progress.step)
        return progress

    def _record(
        self,
        base: LoadedBase,
        plan: list[Batch],
        progress: checkpoints.Progress,
        throughput: Throughput,
        files: list[Path],
        *,
        duration: float,
    ) -> TrainingRecord:
        losses = tuple(LossPoint.model_validate(p) for p in progress.losses)
        draft = DRAFTS[self.domain]
        return TrainingRecord(
            task=self.task,
            domain=self.domain,
            base_model=BaseModelRef(
                path=str(self.model_path),
                sha256=base.sha256,
                name=base.name,
                architecture=base.architecture,
                load_seconds=base.load_seconds,
            ),
            dataset=DatasetRef(
                path=str(self.dataset),
                version=self.manifest.version,
                sha256=self.manifest.sha256,
                examples=self.examples,
                sequences=len(self.training_set.sequences),
                skipped=self.training_set.skipped,
            ),
            prompt_version=self.config.prompt_version,
            schema_sha256=schema_hash(draft.model_json_schema()),
            decoding_schema_sha256=schema_hash(decoding_schema(draft)),
            hyperparameters=self.config,
            seed=self.config.seed,
            steps=len(plan),
            epochs=sum(len(b) for b in plan) / len(self.training_set.sequences),
            final_loss=losses[-1].loss if losses else float("nan"),
            losses=losses,
            resumed_at=tuple(progress.resumed_at),
            duration_s=duration,
            throughput=throughput,
            machine=Machine(
                cpu_count=os.cpu_count() or 0,
                torch_threads=torch.get_num_threads(),
                torch_version=torch.__version__,
                transformers_version=transformers.__version__,
                peft_version=peft.__version__,
                device=str(_device(self.config)),
                platform=platform.platform(),
            ),
            files={str(p.relative_to(self.output)): file_sha256(p) for p in files},
        )

    def _plan_sha256(self, plan: list[Batch]) -> str:
        """Hash of the data order: each step's example ids and their token ids."""
        digest = hashlib.sha256()
        for batch in plan:
            for index in batch:
                sequence = self.training_set.sequences[index]
                digest.update(sequence.example_id.encode("utf-8") + b"\0")
                digest.update(",".join(map(str, sequence.tokens)).encode("ascii") + b"\n")
            digest.update(b"--\n")
        return digest.hexdigest()


def _device(config: TrainingConfig) -> torch.device:
    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(config.device)


def _throughput(steps: int, seconds: float, counts: _Counts) -> Throughput:
    def rate(count: int) -> float:
        return count / seconds if seconds > 0 else 0.0

    return Throughput(
        steps=steps,
        seconds=seconds,
        seconds_per_step=seconds / steps if steps else 0.0,
        cpu_seconds_per_step=counts.cpu_seconds / steps if steps else 0.0,
        sequence_tokens_per_s=rate(counts.sequence),
        evaluated_tokens_per_s=rate(counts.evaluated),
        target_tokens_per_s=rate(counts.target),
    )


def export_checkpoint(
    checkpoint: Path, output: Path, *, task: str, config: TrainingConfig, base: LoadedBase
) -> Path:
    """One checkpoint of a run exported like a finished adapter (`peft/`, `adapter.gguf`,
    and a manifest naming the step), so a learning curve can evaluate it as a contender."""
    model = lora_training.lora_model(base.model, config)
    peft.set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter.safetensors")))
    model.eval()
    output.mkdir(parents=True, exist_ok=True)
    files = export_adapter(
        model, output, heads=base.heads, architecture=base.architecture, alpha=config.alpha,
        name=f"{task} LoRA on {base.name} ({checkpoint.name})", base_model_id=base.name,
    )  # fmt: skip
    manifest = {
        "task": task,
        "prompt_version": config.prompt_version,
        "checkpoint": checkpoint.name,
        "files": {str(p.relative_to(output)): file_sha256(p) for p in files},
    }
    (output / RECORD).write_text(json.dumps(manifest, indent=1) + "\n", "utf-8")
    return output
