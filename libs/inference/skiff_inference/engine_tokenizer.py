"""The llama.cpp engine's token view of a model, without a context: what fine-tuning needs.

An adapter must be trained on exactly the token ids the engine feeds and emits. This class
loads only the GGUF's vocabulary (`vocab_only`, no weights in use) and applies the same
functions the engine applies: the prompt as `prompt_tokens.prompt_tokens` renders and
tokenizes it, the output as the fast decoder's path through the schema's grammar
(`decoder_path`), and the end-of-turn token after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import llama_cpp
import llguidance

from skiff_inference.decoder_path import decoder_path
from skiff_inference.decoding import schema_json
from skiff_inference.engine import ChatMessage
from skiff_inference.guided_decoder import compile_matcher, mask_tokenizer
from skiff_inference.llama_loading import without_extra_buffer_types
from skiff_inference.model_files import ModelFileError
from skiff_inference.prompt_tokens import chat_renderer, end_of_turn_tokens, prompt_tokens


class EngineTokenizer:
    """Prompt and output token ids of one GGUF model, as `LlamaCppEngine` sees them."""

    def __init__(self, model_path: Path) -> None:
        """Load the vocabulary and chat template of `model_path` (a fraction of a second)."""
        if not model_path.is_file():
            raise ModelFileError(f"no model file at {model_path}")
        with without_extra_buffer_types():
            self._llm = llama_cpp.Llama(str(model_path), vocab_only=True, verbose=False)
        self._render = chat_renderer(self._llm)
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        self.end_of_turn: tuple[int, ...] = tuple(end_of_turn_tokens(self._llm))
        self._mask_tokenizer: llguidance.LLTokenizer | None = None
        self._matchers: dict[str, llguidance.LLMatcher] = {}

    @property
    def n_vocab(self) -> int:
        """The vocabulary size (the width of a row of logits)."""
        return int(self._llm.n_vocab())

    def render(self, messages: Sequence[ChatMessage]) -> str:
        """The prompt text, as the engine renders it."""
        return self._render(messages)

    def prompt_tokens(self, messages: Sequence[ChatMessage]) -> list[int]:
        """The prompt's token ids, as the engine evaluates them."""
        return prompt_tokens(self._llm, self._render, messages)

    def output_tokens(self, schema: Mapping[str, Any], text: str) -> list[int]:
        """The fast decoder's tokens for `text` under `schema`, then the end-of-turn token.

        Raises `DecoderPathError` when the decoder cannot produce `text` under `schema`.
        """
        key = schema_json(schema)
        matcher = self._matchers.get(key)
        if matcher is None:
            matcher = compile_matcher(self._tokenizer_for_masks(), key)
            self._matchers[key] = matcher
        path = decoder_path(matcher, self._tokenizer_for_masks(), text, self._encode)
        return [*path, *self.end_of_turn]

    def text(self, tokens: Sequence[int]) -> str:
        """The text of `tokens`, special tokens spelled out."""
        data: bytes = self._llm.detokenize(list(tokens), special=True)
        return data.decode("utf-8", errors="replace")

    def close(self) -> None:
        """Free the vocabulary."""
        self._llm.close()

    def _encode(self, data: bytes) -> list[int]:
        tokens: list[int] = self._llm.tokenize(data, add_bos=False, special=False)
        return tokens

    def _tokenizer_for_masks(self) -> llguidance.LLTokenizer:
        if self._mask_tokenizer is None:
            self._mask_tokenizer = mask_tokenizer(self._vocab)
        return self._mask_tokenizer
