"""The `Engine` protocol and its engines: in-process llama.cpp, OpenAI-compatible HTTP, SGLang.

Import engines from their modules (`skiff_inference.llamacpp`, ...) or build one from
settings with `skiff_inference.factory.build_engine`; this package root exports only the
protocol and value types, so importing it does not load llama.cpp.
"""

import os

# OpenMP threads that spin-wait starve when a vCPU is shared: two llama.cpp threads fell from
# ~35 to ~2.4 tokens/s while another process used the second core. Passive waiting costs
# nothing measurable on an idle machine. It must be set before llama.cpp's OpenMP runtime
# loads, and this package root runs before any of its modules imports llama_cpp.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from skiff_inference.engine import (
    ChatMessage,
    Engine,
    EngineError,
    Generation,
    TokenLogprob,
)

__all__ = ["ChatMessage", "Engine", "EngineError", "Generation", "TokenLogprob"]
