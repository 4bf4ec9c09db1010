"""The latency sketch: bounded, mergeable, and within 1 % of the exact quantile."""

from __future__ import annotations

import math
import random

import pytest

from skiff_registry.sketch import ACCURACY, Sketch


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_quantiles_are_within_the_accuracy_of_the_nearest_rank(q: float) -> None:
    rng = random.Random(7)
    values = [rng.lognormvariate(5, 1) for _ in range(20_000)]
    sketch = Sketch()
    for value in values:
        sketch.add(value)
    assert sketch.quantile(q) == pytest.approx(exact(values, q), rel=ACCURACY)
    assert len(sketch.bins) < 1000


def test_merging_is_the_same_as_adding_everything_to_one() -> None:
    first, second, both = Sketch(), Sketch(), Sketch()
    for n in range(1, 500):
        (first if n % 2 else second).add(float(n))
        both.add(float(n))
    first.merge(second)
    assert first == both


def test_empty_zero_and_a_json_round_trip() -> None:
    sketch = Sketch()
    assert sketch.quantile(0.5) is None
    sketch.add(0.0)
    sketch.add(250.0)
    assert sketch.quantile(0.5) == 0.0
    assert Sketch.model_validate_json(sketch.model_dump_json()) == sketch
