"""ChatML prompt rendering for engines that take raw text (SGLang's native `/generate`).

SmolLM2 and Qwen use ChatML: every turn is `<|im_start|>{role}\\n{content}<|im_end|>\\n`,
and the prompt ends with the assistant header so the model answers next. The output is
a pure function of the messages, so a fixed system prompt renders to the same prefix
on every call and the server's prefix cache can reuse it.
"""

from __future__ import annotations

from collections.abc import Sequence

from skiff_inference.engine import ChatMessage

CHATML_ASSISTANT = "<|im_start|>assistant\n"


def render_chatml(messages: Sequence[ChatMessage]) -> str:
    """Render messages as ChatML, ending with the open assistant turn."""
    turns = [f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages]
    return "".join(turns) + CHATML_ASSISTANT
