"""The adapters Skiff ships: one fine-tuned LoRA per domain, each its task's default champion.

`adapters/<domain>/` holds what `make models` (`libs/models/build_models.py`) wrote there with
`skiff flywheel register --ship`:

    training.json   the manifest: how it was trained, and the sha256 of every file below
    adapter.gguf    the LoRA for llama.cpp (the embedded default)
    peft/           the same LoRA for SGLang (/load_lora_adapter)
    card.json       its model card, the adapter's path left to the installation
    evaluation.json its dev-split evaluation against the base model
    README.md       the model card for people

This package only locates them; it needs nothing but the contracts, so the CLI, the planner
and the workers can read it without the flywheel's training libraries.
"""

from __future__ import annotations

from pathlib import Path

from skiff_contracts.domains import DOMAINS, Domain
from skiff_contracts.registry import ModelCard

ADAPTERS = Path(__file__).resolve().parent / "adapters"
CARD = "card.json"


def shipped_dir(domain: Domain) -> Path:
    """Where the shipped adapter of `domain` lives in the installed package."""
    return ADAPTERS / domain


def shipped_card(domain: Domain) -> ModelCard | None:
    """The shipped adapter's card for this installation (its `adapter` is this package's
    directory), or None when this build ships no adapter for `domain`."""
    path = shipped_dir(domain) / CARD
    if not path.is_file():
        return None
    card = ModelCard.model_validate_json(path.read_text("utf-8"))
    return card.model_copy(update={"adapter": str(shipped_dir(domain))})


def shipped_cards() -> dict[Domain, ModelCard]:
    """Every shipped adapter's card, by domain."""
    return {d: card for d in DOMAINS if (card := shipped_card(d)) is not None}
