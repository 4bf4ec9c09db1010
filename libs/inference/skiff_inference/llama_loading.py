"""Load llama.cpp models without the CPU "extra buffer types", so AMX is never used.

Why: a llama-cpp-python built with `-march=native` on a CPU that advertises AMX moves Q4_1
weights into an AMX buffer. Inside this project's VMs the CPU advertises AMX but does not
grant the tile state, so the first tile instruction (`ldtilecfg`) raises a general-
protection fault and the process dies with SIGSEGV on its first decode (kernel log: "general
protection fault ... in libggml-cpu.so"). A plain `pip install` builds natively, which is
also the fastest build here, so the fix lives at load time. Setting
`llama_model_params.use_extra_bufts = False` keeps weights in plain CPU buffers whatever the
build. It also turns off weight repacking, which the bundled Q4_1 model does not use
("cannot be used with preferred buffer type CPU_REPACK" in llama.cpp's log). llama-cpp-
python has no keyword for the field, so its default-params function is wrapped while a model
loads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import llama_cpp.llama_cpp as llama_c

_PATCH_LOCK = threading.Lock()


@contextmanager
def without_extra_buffer_types() -> Iterator[None]:
    """Models loaded inside this block get `use_extra_bufts=False` (no AMX, no repacking).

    Loads inside the block are serialized with other users of this function.
    """
    with _PATCH_LOCK:
        original = llama_c.llama_model_default_params

        def default_params_without_extra_buffers() -> Any:
            params = original()
            params.use_extra_bufts = False
            return params

        llama_c.llama_model_default_params = default_params_without_extra_buffers
        try:
            yield
        finally:
            llama_c.llama_model_default_params = original
