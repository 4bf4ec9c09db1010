"""The `flywheel` extra (torch, transformers, peft, gguf, safetensors): present or a typed error.

Fine-tuning is the only part of Skiff that needs torch, and torch is large and
machine-specific (the CPU build here, a CUDA build on a GPU host), so it is an optional extra.
Modules that use it import it at their top and are themselves imported only after
`require_flywheel()` has passed, so importing `skiff_flywheel.finetune` never fails for lack
of torch: a caller gets `FlywheelExtraMissing` when it asks for training.
"""

from __future__ import annotations

import importlib.util

# Import name -> the distribution to install.
REQUIRED = {
    "torch": "torch",
    "transformers": "transformers",
    "peft": "peft",
    "gguf": "gguf",
    "safetensors": "safetensors",
}

INSTALL_HINT = (
    "install the flywheel extra: `pip install -e '.[flywheel]'` (on this project's CPU "
    "machines it pins torch==2.13.0, the CPU build; never install an unpinned torch)"
)


class FlywheelExtraMissing(ImportError):
    """A package of the `flywheel` extra is not installed."""

    def __init__(self, missing: list[str]) -> None:
        super().__init__(f"fine-tuning needs {', '.join(missing)}: {INSTALL_HINT}")
        self.missing = missing


def missing_packages() -> list[str]:
    """The distributions of the extra that cannot be imported here."""
    return [dist for name, dist in REQUIRED.items() if importlib.util.find_spec(name) is None]


def require_flywheel() -> None:
    """Return when the extra is installed; raise `FlywheelExtraMissing` naming what is not."""
    missing = missing_packages()
    if missing:
        raise FlywheelExtraMissing(missing)
