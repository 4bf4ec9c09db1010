"""Start llama-cpp-python's OpenAI-compatible server on a free port, for integration tests.

The server is `python -m llama_cpp.server`, launched through
`python -m skiff_inference.llamacpp_server` (same arguments) so that a natively built
llama-cpp-python does not die on AMX inside this project's VMs (see
skiff_inference/llama_loading.py). Unlike the LLM stand-in it keeps every logit
(`--logits_all`, the default), so log-probabilities can be asked for.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from skiff_cli.stack import http_server
from skiff_runtime.nats_server import free_port

MODEL_ALIAS = "smollm2"


@contextlib.contextmanager
def llama_cpp_server(
    model: Path, *, threads: int = 1, n_ctx: int = 2048, ready_timeout_s: float = 60.0
) -> Iterator[str]:
    """Run the server until the block ends; yields its base URL (no `/v1`)."""
    port = free_port()
    command = [
        sys.executable, "-m", "skiff_inference.llamacpp_server",
        "--model", str(model), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", str(port),
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--n_ctx", str(n_ctx), "--verbose", "false",
    ]  # fmt: skip
    with http_server(command, f"http://127.0.0.1:{port}", ready_timeout_s) as url:
        yield url
