"""`python -m skiff_inference.llamacpp_server ARGS`: llama-cpp-python's OpenAI-compatible server.

It takes exactly the arguments of `python -m llama_cpp.server` (`--model`, `--host`,
`--port`, `--n_threads`, ...) and runs that server with the CPU extra buffer types off,
so a natively built llama-cpp-python does not die on AMX inside this project's VMs
(see `llama_loading.py`). Used by the integration tests and for local LLM-tier stand-ins.
"""

from __future__ import annotations

import runpy

from skiff_inference.llama_loading import without_extra_buffer_types


def main() -> None:
    """Run llama-cpp-python's server `__main__` with the guarded model parameters."""
    with without_extra_buffer_types():
        runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
