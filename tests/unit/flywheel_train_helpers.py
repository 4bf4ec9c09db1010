"""Shared by the fine-tuning tests: a handful of flight examples, a dataset of them, a tiny llama.

The tiny llama has SmolLM2's vocabulary (so the real tokenizer's ids fit) and everything else
small, so a training run takes seconds: it stands in for the base model wherever the test is
about the training machinery, not about what a real model learns.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from skiff_flywheel.dataset import Example, write_dataset
from skiff_inference.model_files import bundled_model_path

TASK = "flights.extract"

FLIGHTS: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    (
        "Two tickets from Philly to Chicago on March 3rd please, economy.",
        {"origin": "Philadelphia", "destination": "Chicago", "departure_date": "2019-03-03",
         "passengers": 2, "seating_class": "economy"},
        {"origin": "Philly", "destination": "Chicago", "departure_date": "March 3rd",
         "passengers": "Two", "seating_class": "economy"},
    ),
    (
        "Find me a one way flight to London next Monday with Delta.",
        {"destination": "London", "departure_date": "2019-03-04", "airline": "Delta"},
        {"destination": "London", "departure_date": "next Monday", "airline": "Delta"},
    ),
    (
        "I'm flying out of São Paulo to Lima on the 12th, nonstop if possible.",
        {"origin": "São Paulo", "destination": "Lima", "departure_date": "2019-03-12",
         "nonstop": True},
        {"departure_date": "the 12th"},
    ),
    (
        "Business class from Seattle to Vegas for 3 people, leaving March 9, back the 14th.",
        {"origin": "Seattle", "destination": "Las Vegas", "departure_date": "2019-03-09",
         "return_date": "2019-03-14", "passengers": 3, "seating_class": "business"},
        {"origin": "Seattle", "destination": "Vegas", "departure_date": "March 9",
         "return_date": "the 14th"},
    ),
    (
        "Need a refundable ticket to Denver tomorrow.",
        {"destination": "Denver", "departure_date": "2019-03-02", "refundable": True},
        {"destination": "Denver", "departure_date": "tomorrow"},
    ),
    (
        "Going from Boston to Atlanta on the 20th of March.",
        {"origin": "Boston", "destination": "Atlanta", "departure_date": "2019-03-20"},
        {"origin": "Boston", "destination": "Atlanta", "departure_date": "20th of March"},
    ),
]  # fmt: skip


def example(n: int, text: str, params: dict[str, Any], spans: dict[str, str]) -> Example:
    return Example(
        example_id=f"ex-{n}",
        task=TASK,
        text=text,
        params={"domain": "flights", **params},
        source="test",
        group=f"g{n}",
        spans=spans,
    )


def examples() -> list[Example]:
    return [example(n, *row) for n, row in enumerate(FLIGHTS)]


def write_flights_dataset(directory: Path, count: int = len(FLIGHTS)) -> Path:
    write_dataset(
        directory,
        {"train": examples()[:count], "eval": []},
        task=TASK,
        sources=["test"],
        dropped={},
        eval_share=0.0,
    )
    return directory


def tiny_base() -> Any:
    """A 2-layer llama with SmolLM2's vocabulary and head layout (9 heads, 3 kv), random."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from skiff_flywheel.base_model import from_model

    torch.manual_seed(1234)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=72,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=9,
        num_key_value_heads=3,
        head_dim=8,
        tie_word_embeddings=True,
        max_position_embeddings=1024,
    )
    model = LlamaForCausalLM(config).float()
    return from_model(model, bundled_model_path())
