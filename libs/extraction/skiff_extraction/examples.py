"""Solved requests the LLM tier shows its model: a bank per domain, and retrieval from it.

The bank is built offline by `libs/extraction/build_examples.py` into
`data/examples/<domain>.jsonl` (SGD development data plus hand-written examples; the
evaluation records and their dialogues are held out). For one request, the examples most
similar to its text become earlier chat turns, request then answer, so the model imitates
the closest solved cases. The most similar comes last, nearest to the request.

Similarity is lexical: rapidfuzz's `token_set_ratio` over normalised words. Requests with
the same phrasing ("leaving from X on the 12th and coming back the 15th") share the slot
structure a small model must copy, and scoring a few hundred examples takes about a
millisecond.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process, utils

from skiff_contracts.domains import DOMAINS, Domain
from skiff_inference.engine import ChatMessage


@dataclass(frozen=True)
class Example:
    """One solved request: the text and the draft a model should emit for it."""

    example_id: str
    text: str
    draft: dict[str, Any]
    context: bool = False  # the text ends with a context sentence from the trip's other steps


def _parse(line: str) -> Example:
    data = json.loads(line)
    return Example(
        example_id=str(data["id"]),
        text=str(data["text"]),
        draft=dict(data["draft"]),
        context=bool(data.get("context", False)),
    )


class ExampleBank:
    """Every domain's solved requests, retrievable by similarity to a request text."""

    def __init__(self, examples: Mapping[Domain, Sequence[Example]]) -> None:
        self._plain = {d: [e for e in examples.get(d, ()) if not e.context] for d in DOMAINS}
        self._context = {d: [e for e in examples.get(d, ()) if e.context] for d in DOMAINS}
        self._keys = {d: [utils.default_process(e.text) for e in self._plain[d]] for d in DOMAINS}

    @classmethod
    def load(cls, directory: Path | None = None) -> ExampleBank:
        """The committed bank, or one built into `directory`."""
        examples: dict[Domain, list[Example]] = {}
        for domain in DOMAINS:
            if directory is not None:
                path = directory / f"{domain}.jsonl"
                text = path.read_text() if path.exists() else ""
            else:
                packaged = resources.files("skiff_extraction") / "data" / "examples"
                entry = packaged / f"{domain}.jsonl"
                text = entry.read_text() if entry.is_file() else ""
            examples[domain] = [_parse(line) for line in text.splitlines() if line.strip()]
        return cls(examples)

    def size(self, domain: Domain) -> int:
        return len(self._plain[domain]) + len(self._context[domain])

    def retrieve(
        self, domain: Domain, text: str, k: int, *, with_context: bool = False
    ) -> list[Example]:
        """The `k` examples most similar to `text`, least similar first.

        With `with_context` (the request carries the trip's context sentence), one of the
        domain's context examples takes the place nearest the request, so the model sees
        how a value is taken from that sentence.
        """
        if k <= 0:
            return []
        context: list[Example] = []
        if with_context and self._context[domain]:
            best = process.extractOne(
                text, [e.text for e in self._context[domain]], scorer=fuzz.token_set_ratio,
                processor=utils.default_process,
            )  # fmt: skip
            if best is not None:
                context.append(self._context[domain][best[2]])
        similar: list[Example] = []
        wanted = k - len(context)
        if wanted > 0 and self._plain[domain]:
            found = process.extract(
                utils.default_process(text), self._keys[domain], scorer=fuzz.token_set_ratio,
                limit=wanted, processor=None,
            )  # fmt: skip
            similar = [self._plain[domain][index] for _, _, index in found]
        return [*reversed(similar), *context]


def example_turns(examples: Sequence[Example]) -> list[ChatMessage]:
    """The examples as chat turns: the request, then the draft as JSON."""
    turns: list[ChatMessage] = []
    for example in examples:
        turns.append({"role": "user", "content": example.text})
        turns.append({"role": "assistant", "content": json.dumps(example.draft)})
    return turns
