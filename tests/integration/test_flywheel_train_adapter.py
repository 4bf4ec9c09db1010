"""A LoRA trained here on the real base loads in the llama.cpp engine and does what torch says.

One short, high-rate fine-tune of the bundled SmolLM2 on two examples (the default settings
otherwise: all seven projections, shared-prefix batches), exported, then:

* the engine with the adapter writes the training target exactly, which the base does not;
* llama.cpp with the adapter agrees with torch + peft on the same token sequence: the
  per-position argmax over the target, and the change the adapter makes to each target
  token's log-probability;
* the q/k rows: an adapter of only the q and k projections, exported as `gguf_lora` exports
  it, moves llama.cpp's log-probabilities as it moves torch's; exported without the
  converter's row permutation it does not. That is what proves the permutation.

Marker `model`; about a minute and a half on a quiet 2-core machine, most of it the GGUF
load into transformers and eight optimizer steps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from skiff_contracts.domains import DRAFTS  # noqa: E402
from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION, extraction_messages  # noqa: E402
from skiff_extraction.schema import decoding_schema  # noqa: E402
from skiff_flywheel.base_model import LoadedBase, load_base  # noqa: E402
from skiff_flywheel.finetune import train  # noqa: E402
from skiff_flywheel.gguf_lora import GGUF_MODULES, Heads, gguf_tensors, write_gguf_lora  # noqa: E402
from skiff_flywheel.lora_export import lora_pairs  # noqa: E402
from skiff_flywheel.training_config import TrainingConfig  # noqa: E402
from skiff_flywheel.training_data import TrainingSequence, sequence_for  # noqa: E402
from skiff_flywheel.training_types import TrainingResult  # noqa: E402
from skiff_inference.engine_tokenizer import EngineTokenizer  # noqa: E402
from skiff_inference.kv_session import KvSession  # noqa: E402
from skiff_inference.llama_loading import without_extra_buffer_types  # noqa: E402
from skiff_inference.llamacpp import LlamaCppEngine  # noqa: E402
from skiff_inference.lora_adapters import AdapterSet  # noqa: E402
from skiff_inference.model_files import bundled_model_path  # noqa: E402
from tests.unit.flywheel_train_helpers import TASK, examples, write_flights_dataset  # noqa: E402

pytestmark = pytest.mark.model

LogProbs = npt.NDArray[np.float32]
CONFIG = TrainingConfig(
    max_steps=8,
    batch_size=2,
    learning_rate=3e-3,
    warmup_steps=0,
    dropout=0.0,
    checkpoint_every=8,
)
SCHEMA = decoding_schema(DRAFTS["flights"])


@pytest.fixture(scope="module")
def base() -> LoadedBase:
    return load_base(bundled_model_path())


@pytest.fixture(scope="module")
def trained(base: LoadedBase, tmp_path_factory: pytest.TempPathFactory) -> TrainingResult:
    root = tmp_path_factory.mktemp("train")
    dataset = write_flights_dataset(root / "data", count=2)
    return train(TASK, dataset, root / "out", config=CONFIG, base=base)


@pytest.fixture(scope="module")
def sequence() -> Iterator[TrainingSequence]:
    tokenizer = EngineTokenizer(bundled_model_path())
    yield sequence_for(examples()[0], "flights", tokenizer, prompt_version=ADAPTER_PROMPT_VERSION)
    tokenizer.close()


@pytest.fixture(scope="module")
def peft_model(base: LoadedBase, trained: TrainingResult) -> Any:
    model = peft.PeftModel.from_pretrained(base.model, str(trained.peft_dir))
    model.eval()
    return model


def torch_logprobs(model: Any, sequence: TrainingSequence, *, adapter: bool) -> LogProbs:
    """Log-probabilities at the positions that predict each target token."""
    ids = torch.tensor([sequence.tokens])
    with torch.no_grad():
        if adapter:
            logits = model(input_ids=ids).logits
        else:
            with model.disable_adapter():
                logits = model(input_ids=ids).logits
    rows = logits[0, sequence.prompt_length - 1 : -1].float()
    result: LogProbs = torch.log_softmax(rows, dim=-1).numpy()
    return result


def llama_logprobs(sequence: TrainingSequence, adapter: Path | None) -> LogProbs:
    """The same rows from llama.cpp (Q4_1), through the engine's own KV session and adapters."""
    import llama_cpp

    with without_extra_buffer_types():
        llm = llama_cpp.Llama(
            str(bundled_model_path()), n_ctx=1024, n_threads=2, n_threads_batch=2, verbose=False
        )
    adapters = AdapterSet(llm)
    session = KvSession(llm)
    try:
        if adapter is not None:
            adapters.load("a", adapter)
            adapters.apply("a")
        rows = session.evaluate(list(sequence.tokens[:-1]), rows=sequence.target_tokens)
    finally:
        session.close()
        adapters.close()
        llm.close()
    shifted = rows - rows.max(axis=1, keepdims=True)
    result: LogProbs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return result


def at_targets(rows: LogProbs, sequence: TrainingSequence) -> LogProbs:
    targets = np.array(sequence.tokens[sequence.prompt_length :])
    picked: LogProbs = rows[np.arange(len(targets)), targets]
    return picked


async def test_the_engine_with_the_adapter_writes_the_target_the_base_does_not(
    trained: TrainingResult, sequence: TrainingSequence
) -> None:
    assert trained.record.losses[-1].loss < 0.1 < trained.record.losses[0].loss
    engine = LlamaCppEngine(threads=2)
    try:
        messages = extraction_messages(
            "flights", examples()[0].text, prompt_version=ADAPTER_PROMPT_VERSION
        )
        before = await engine.generate_json(messages, SCHEMA, max_tokens=160)
        await engine.load_adapter("flights-ft", trained.gguf)  # while the engine is serving
        after = await engine.generate_json(messages, SCHEMA, max_tokens=160, adapter="flights-ft")
        assert engine.last_decoded is not None
        emitted = engine.last_decoded.token_ids
        base_again = await engine.generate_json(messages, SCHEMA, max_tokens=160)
    finally:
        await engine.aclose()
    assert after.adapter == "flights-ft"
    assert after.raw == sequence.target
    # Token for token what it was trained on (the end-of-turn token is never decoded).
    assert emitted == list(sequence.tokens[sequence.prompt_length : -1])
    assert before.raw != sequence.target
    assert base_again.raw == before.raw


def test_llama_cpp_with_the_adapter_agrees_with_torch_and_peft(
    peft_model: Any, trained: TrainingResult, sequence: TrainingSequence
) -> None:
    torch_tuned = torch_logprobs(peft_model, sequence, adapter=True)
    torch_base = torch_logprobs(peft_model, sequence, adapter=False)
    llama_tuned = llama_logprobs(sequence, trained.gguf)
    llama_base = llama_logprobs(sequence, None)
    # Same winner at (nearly) every target position: fp32 torch vs llama.cpp's Q4_1 x Q8 dots.
    assert (llama_tuned.argmax(1) == torch_tuned.argmax(1)).mean() >= 0.95
    assert (llama_base.argmax(1) == torch_base.argmax(1)).mean() >= 0.9
    # The adapter moves each target token's log-probability the same way in both.
    torch_delta = at_targets(torch_tuned, sequence) - at_targets(torch_base, sequence)
    llama_delta = at_targets(llama_tuned, sequence) - at_targets(llama_base, sequence)
    assert np.abs(torch_delta).max() > 1.0, "the adapter changed the model"
    assert np.corrcoef(torch_delta, llama_delta)[0, 1] > 0.95
    assert np.abs(torch_delta - llama_delta).mean() < 0.25 * np.abs(torch_delta).mean()


def test_q_and_k_need_the_converters_row_permutation(
    peft_model: Any, trained: TrainingResult, sequence: TrainingSequence, tmp_path: Path
) -> None:
    qk = {k: v for k, v in lora_pairs(peft_model).items() if k[1] in ("q_proj", "k_proj")}
    right = tmp_path / "qk.gguf"
    write_gguf_lora(
        right,
        gguf_tensors(qk, Heads(n_head=9, n_head_kv=3)),
        architecture="llama",
        alpha=16,
        name="qk",
    )
    unpermuted = {}
    for (layer, module), pair in qk.items():
        name = f"blk.{layer}.{GGUF_MODULES[module]}.weight"
        unpermuted[f"{name}.lora_a"], unpermuted[f"{name}.lora_b"] = pair.a, pair.b
    wrong = tmp_path / "qk-unpermuted.gguf"
    write_gguf_lora(wrong, unpermuted, architecture="llama", alpha=16, name="qk")
    # torch with only the q/k part of the adapter: the other lora_B zeroed, then restored.
    saved = {}
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name and not ("q_proj" in name or "k_proj" in name):
                saved[name] = parameter.detach().clone()
                parameter.zero_()
    try:
        torch_qk = torch_logprobs(peft_model, sequence, adapter=True)
    finally:
        with torch.no_grad():
            for name, parameter in peft_model.named_parameters():
                if name in saved:
                    parameter.copy_(saved[name])
    torch_base = torch_logprobs(peft_model, sequence, adapter=False)
    llama_base = llama_logprobs(sequence, None)
    torch_delta = torch_qk - torch_base  # every vocabulary entry at every target position
    errors = {}
    for label, path in (("right", right), ("wrong", wrong)):
        llama_delta = llama_logprobs(sequence, path) - llama_base
        errors[label] = float(np.abs(llama_delta - torch_delta).mean())
    scale = float(np.abs(torch_delta).mean())
    assert scale > 0.05, "the q/k part of the adapter matters on its own"
    assert errors["right"] < 0.3 * scale
    assert errors["wrong"] > 3 * errors["right"]
