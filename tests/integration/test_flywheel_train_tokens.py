"""Training sequences are token for token what the running engine evaluates and emits.

The prompt: `EngineTokenizer` (vocabulary only) against the `LlamaCppEngine` serving the
model, for every domain; and against transformers' tokenizer and chat template from the same
GGUF, which is what an SGLang server serving the peft export tokenizes with. The output:
the decoder path of what the engine wrote spells it and fits the grammar; that a trained
adapter emits exactly its training tokens is in test_flywheel_train_adapter.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from skiff_contracts.domains import DOMAINS, DRAFTS
from skiff_extraction.prompts import ADAPTER_PROMPT_VERSION, extraction_messages
from skiff_extraction.schema import decoding_schema
from skiff_flywheel.training_data import sequence_for
from skiff_inference.engine_tokenizer import EngineTokenizer
from skiff_inference.llamacpp import LlamaCppEngine
from skiff_inference.model_files import bundled_model_path
from tests.unit.flywheel_train_helpers import examples

pytestmark = pytest.mark.model

TEXTS = [e.text for e in examples()[:3]]


@pytest.fixture(scope="module")
def tokenizer() -> Iterator[EngineTokenizer]:
    loaded = EngineTokenizer(bundled_model_path())
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[LlamaCppEngine]:
    served = LlamaCppEngine(threads=1)
    yield served
    await served.aclose()


async def test_prompts_are_the_tokens_the_engine_evaluates(
    tokenizer: EngineTokenizer, engine: LlamaCppEngine
) -> None:
    for domain in DOMAINS:
        schema = decoding_schema(DRAFTS[domain])
        for text in TEXTS:
            messages = extraction_messages(domain, text, prompt_version=ADAPTER_PROMPT_VERSION)
            assert tokenizer.prompt_tokens(messages) == engine.prompt_tokens(messages)
        # And what the engine then evaluates, from an empty cache, is that many tokens.
        messages = extraction_messages(domain, TEXTS[0], prompt_version=ADAPTER_PROMPT_VERSION)
        prompt = tokenizer.prompt_tokens(messages)
        await engine.forget_prefix()
        generation = await engine.generate_json(messages, schema, max_tokens=4)
        assert generation.tokens_in == len(prompt)
        assert engine.last_decoded is not None
        assert engine.last_decoded.prompt_evaluated == len(prompt)


def test_sglangs_tokenizer_sees_the_same_sequence(tokenizer: EngineTokenizer) -> None:
    transformers = pytest.importorskip("transformers")
    path = bundled_model_path()
    hf = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    for n, ex in enumerate(examples()):
        sequence = sequence_for(ex, "flights", tokenizer, prompt_version=ADAPTER_PROMPT_VERSION)
        messages = extraction_messages("flights", ex.text, prompt_version=ADAPTER_PROMPT_VERSION)
        rendered = hf.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = rendered["input_ids"] if hasattr(rendered, "keys") else rendered
        assert list(ids) == list(sequence.tokens[: sequence.prompt_length]), n
        target = hf(sequence.target + "<|im_end|>", add_special_tokens=False)["input_ids"]
        assert list(target) == list(sequence.tokens[sequence.prompt_length :]), n


async def test_the_decoder_path_of_an_engine_output_spells_it(
    tokenizer: EngineTokenizer, engine: LlamaCppEngine
) -> None:
    for domain in ("flights", "hotels"):
        schema = decoding_schema(DRAFTS[domain])
        messages = extraction_messages(domain, TEXTS[0], prompt_version=ADAPTER_PROMPT_VERSION)
        generation = await engine.generate_json(messages, schema, max_tokens=200)
        assert generation.json_error is None
        path = tokenizer.output_tokens(schema, generation.raw)
        assert tokenizer.text(path) == generation.raw + "<|im_end|>"
        assert engine.last_decoded is not None
        # The base model sometimes takes a non-canonical spelling (`"` then `}` for `"}`);
        # the forced stretches are the same either way, so the lengths stay close.
        assert abs(len(path) - 1 - len(engine.last_decoded.token_ids)) <= 3
