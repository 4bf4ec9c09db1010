"""Start llama-cpp-python's OpenAI-compatible server on a free port, for integration tests.

The server is `python -m llama_cpp.server`, launched through
`python -m skiff_inference.llamacpp_server` (same arguments) so that a natively built
llama-cpp-python does not die on AMX inside this project's VMs (see
skiff_inference/llama_loading.py). It listens on 127.0.0.1 and is polled on `/v1/models`
until it answers; its output goes to a temporary file shown if it dies during start-up.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx

MODEL_ALIAS = "smollm2"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def llama_cpp_server(
    model: Path, *, threads: int = 1, n_ctx: int = 2048, ready_timeout_s: float = 60.0
) -> Iterator[str]:
    """Run the server until the block ends; yields its base URL (no `/v1`)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "skiff_inference.llamacpp_server",
        "--model",
        str(model),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
        "--n_ctx",
        str(n_ctx),
        "--verbose",
        "false",
    ]
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_ready(process, url, ready_timeout_s, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, timeout_s: float, log: IO[bytes]
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            output = log.read().decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"llama_cpp server exited with {process.returncode}:\n{output}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/models", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"llama_cpp server at {url} not ready after {timeout_s}s")
