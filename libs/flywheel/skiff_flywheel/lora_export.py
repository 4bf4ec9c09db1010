"""Export a trained LoRA for both engines: a peft directory (SGLang) and a GGUF file (llama.cpp).

* `peft/`: `adapter_config.json` + `adapter_model.safetensors`, peft's own
  `save_pretrained`, which SGLang's `/load_lora_adapter` (and `--lora-paths`) read. Its
  `base_model_name_or_path` is the HF id of the base SGLang serves when one is given,
  else the GGUF path trained on (SGLang reads rank, alpha and target modules from the file,
  not the base's name). The weights fit the HF layout: q/k rows in HF order.
* `adapter.gguf`: the same A and B matrices in llama.cpp's layout (`gguf_lora`), q/k
  `lora_b` rows permuted as llama.cpp's converter permutes the base's q/k weights.

Needs the `flywheel` extra: import this module only after `require_flywheel()`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from peft import PeftModel, get_peft_model_state_dict
from safetensors.torch import load_file, save_file

from skiff_flywheel.gguf_lora import (
    Array,
    ExportDtype,
    Heads,
    LoraPair,
    gguf_tensors,
    write_gguf_lora,
)
from skiff_flywheel.training_types import GGUF_FILE, PEFT_DIR

# peft's state-dict keys: base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_A.weight
_KEY = re.compile(r"\.layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])\.weight$")


class ExportError(ValueError):
    """The trained adapter has weights the export does not know how to place."""


def lora_pairs(model: PeftModel) -> dict[tuple[int, str], LoraPair]:
    """The adapter's (A, B) matrices keyed by (layer, module), as float32 numpy arrays."""
    halves: dict[tuple[int, str], dict[str, Array]] = {}
    for key, tensor in get_peft_model_state_dict(model, save_embedding_layers=False).items():
        match = _KEY.search(key)
        if match is None:
            raise ExportError(f"unexpected adapter weight {key!r} (only LoRA A/B of blocks)")
        layer, module, half = int(match[1]), match[2], match[3]
        halves.setdefault((layer, module), {})[half] = tensor.detach().float().cpu().numpy()
    pairs: dict[tuple[int, str], LoraPair] = {}
    for where, parts in halves.items():
        if set(parts) != {"A", "B"}:
            raise ExportError(f"layer {where[0]} {where[1]}: only {sorted(parts)} present")
        pairs[where] = LoraPair(a=parts["A"], b=parts["B"])
    return pairs


def export_adapter(
    model: PeftModel,
    output: Path,
    *,
    heads: Heads,
    architecture: str,
    alpha: float,
    name: str,
    base_model_id: str,
    dtype: ExportDtype = "float32",
) -> list[Path]:
    """Write `peft/` and `adapter.gguf` into `output`, weights stored as `dtype`; return the
    files written."""
    peft_dir = output / PEFT_DIR
    model.peft_config["default"].base_model_name_or_path = base_model_id
    # No embedding layers are adapted; "auto" would look for the base's HF config to check.
    model.save_pretrained(str(peft_dir), save_embedding_layers=False)
    _canonical_config(peft_dir / "adapter_config.json")
    if dtype == "float16":
        weights = peft_dir / "adapter_model.safetensors"
        save_file({k: v.half() for k, v in load_file(str(weights)).items()}, str(weights))
    gguf_path = output / GGUF_FILE
    tensors = gguf_tensors(lora_pairs(model), heads)
    write_gguf_lora(
        gguf_path, tensors, architecture=architecture, alpha=alpha, name=name, dtype=dtype
    )
    return [
        peft_dir / "adapter_config.json",
        peft_dir / "adapter_model.safetensors",
        gguf_path,
    ]


def _canonical_config(path: Path) -> None:
    """Rewrite peft's config with sorted keys and modules: the same run, the same bytes.

    peft keeps `target_modules` as a set, so the saved order follows the process's string
    hash seed and two identical runs would write different files (and sha256s).
    """
    config = json.loads(path.read_text("utf-8"))
    if isinstance(config.get("target_modules"), list):
        config["target_modules"] = sorted(config["target_modules"])
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", "utf-8")
