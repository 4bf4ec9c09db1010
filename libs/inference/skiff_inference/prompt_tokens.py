"""How the llama.cpp engine turns chat messages into token ids, and how a model's turn ends.

One place for it, because two parties must agree on it token for token: the engine, which
renders a prompt with the GGUF's own chat template and tokenizes it, and fine-tuning, which
trains an adapter on exactly the sequence the engine will feed it (`EngineTokenizer`).

* Rendering: llama-cpp-python's `Jinja2ChatFormatter` over `tokenizer.chat_template` from
  the GGUF (its default `add_generation_prompt=True`: the prompt ends with the open
  assistant turn), or ChatML when the file carries no template.
* Tokenizing: `add_bos=True` (llama.cpp adds BOS only if the vocabulary asks for it) and
  `special=True`, so `<|im_start|>` in the rendered text is one control token.
* End of turn: what the template writes after an assistant message's content, up to and
  including its first end-of-generation token (SmolLM2: `<|im_end|>`). The engine stops at
  any end-of-generation token, so the rest of the template's suffix (a newline) is never fed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import llama_cpp
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from skiff_inference.chat_template import CHATML_ASSISTANT, render_chatml
from skiff_inference.engine import ChatMessage

Renderer = Callable[[Sequence[ChatMessage]], str]

# Any text works: only what the template writes after it matters.
_PROBE = "\x00probe\x00"


def chat_renderer(llm: llama_cpp.Llama, *, generation_prompt: bool = True) -> Renderer:
    """The prompt text for a list of messages, as this model's chat template renders it.

    `generation_prompt=False` leaves out the open assistant turn at the end.
    """
    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        if generation_prompt:
            return render_chatml
        return lambda messages: render_chatml(messages).removesuffix(CHATML_ASSISTANT)
    formatter = Jinja2ChatFormatter(
        template=template,
        eos_token=special_text(llm, llm.token_eos()),
        bos_token=special_text(llm, llm.token_bos()),
        add_generation_prompt=generation_prompt,
    )

    def render(messages: Sequence[ChatMessage]) -> str:
        chat: list[Any] = list(messages)  # llama-cpp-python's message TypedDicts are wider
        return str(formatter(messages=chat).prompt)

    return render


def prompt_tokens(
    llm: llama_cpp.Llama, render: Renderer, messages: Sequence[ChatMessage]
) -> list[int]:
    """The token ids the engine evaluates for `messages` (the prompt, before any output)."""
    tokens: list[int] = llm.tokenize(render(messages).encode("utf-8"), add_bos=True, special=True)
    return tokens


def end_of_turn_tokens(llm: llama_cpp.Llama) -> list[int]:
    """The tokens that end an assistant turn, through the first end-of-generation token.

    Raises `ValueError` when the template writes no end-of-generation token after an
    assistant message (a model trained on it would never stop on its own).
    """
    render = chat_renderer(llm, generation_prompt=False)
    closed = render([{"role": "user", "content": "u"}, {"role": "assistant", "content": _PROBE}])
    after = closed.split(_PROBE, 1)[1]
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    tokens: list[int] = llm.tokenize(after.encode("utf-8"), add_bos=False, special=True)
    for i, token in enumerate(tokens):
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            return tokens[: i + 1]
    raise ValueError(f"the chat template ends an assistant turn with {after!r}: no end token")


def special_text(llm: llama_cpp.Llama, token: int) -> str:
    """A special token's text (`<|im_end|>`), or "" for an absent one (id < 0)."""
    if token < 0:
        return ""
    return str(llm.detokenize([token], special=True).decode("utf-8", errors="replace"))
