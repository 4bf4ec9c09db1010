"""A versioned dataset on disk: `train.jsonl`, `eval.jsonl` and `manifest.json`.

The manifest says what the dataset is (task, sources, counts per split, what was dropped and
why) and carries a sha256 over both files, so an evaluation or a trained adapter can name
exactly the data it came from. Lines are written in a fixed order with sorted keys, so the
same examples always give the same bytes and the same hash; the creation time is kept out
of the hash. The default version is the hash's first 12 characters: content-addressed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skiff_contracts.base import utc_now

Split = Literal["train", "eval"]
SPLITS: tuple[Split, ...] = ("train", "eval")
MANIFEST = "manifest.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Example(_Frozen):
    """One labelled request: the (redacted) text and the accepted answer for it."""

    example_id: str = Field(description="the accepted answer's record id, or the source's own id")
    task: str = Field(description="'<domain>.extract'")
    text: str
    params: dict[str, Any] = Field(description="the final answer: the domain request, JSON form")
    source: str = Field(description="'calls' for logged calls, 'sgd' for the SGD import, ...")
    group: str = Field(description="split key: examples of one group share a split")
    answered_by: str | None = Field(default=None, description="slm, llm or user (calls only)")
    spans: dict[str, str] = Field(
        default_factory=dict, description="values as the user wrote them, where the source has them"
    )
    reference_date: date | None = Field(
        default=None, description="the request's 'today', which its relative dates resolve against"
    )
    draft: dict[str, Any] | None = Field(
        default=None,
        description="the draft a model should write for the text, where the source has it "
        "(the call log's accepted drafts, generated requests); else it is built from `params` "
        "and `spans`",
    )


class Manifest(_Frozen):
    """What a dataset directory holds."""

    task: str
    version: str
    sources: tuple[str, ...]
    counts: dict[Split, int]
    dropped: dict[str, int] = Field(description="records left out, by reason")
    eval_share: float
    rules: dict[str, str] = Field(default_factory=dict, description="how it was curated")
    sha256: str = Field(description="over train.jsonl then eval.jsonl, each prefixed by its name")
    created_at: datetime = Field(default_factory=utc_now)


class DatasetExists(Exception):
    """The output directory already holds a dataset; pass overwrite to replace it."""


class DatasetCorrupt(Exception):
    """A dataset's files do not hash to its manifest's sha256."""


def render(examples: Iterable[Example]) -> bytes:
    """The JSONL bytes of a split, in a fixed order (by group, then id)."""
    ordered = sorted(examples, key=lambda e: (e.group, e.example_id))
    lines = (
        json.dumps(e.model_dump(mode="json"), sort_keys=True, ensure_ascii=False) for e in ordered
    )
    return "".join(line + "\n" for line in lines).encode("utf-8")


def split_sha256(examples: Iterable[Example]) -> str:
    """sha256 of one split's rendered lines: equal values, the same examples, whatever the
    other split holds (an eval split survives a change to the training data)."""
    return hashlib.sha256(render(examples)).hexdigest()


def content_hash(files: Mapping[Split, bytes]) -> str:
    """sha256 over every split's bytes, each prefixed by its file name (a moved line counts)."""
    digest = hashlib.sha256()
    for split in SPLITS:
        digest.update(f"{split}.jsonl\n".encode())
        digest.update(files[split])
    return digest.hexdigest()


def write_dataset(
    output: Path,
    splits: Mapping[Split, list[Example]],
    *,
    task: str,
    sources: Iterable[str],
    dropped: Mapping[str, int],
    eval_share: float,
    rules: Mapping[str, str] | None = None,
    version: str | None = None,
    overwrite: bool = False,
) -> Manifest:
    """Write the splits and their manifest into `output` (created if missing)."""
    if (output / MANIFEST).exists() and not overwrite:
        raise DatasetExists(f"{output} already holds a dataset")
    files = {split: render(splits[split]) for split in SPLITS}
    sha = content_hash(files)
    manifest = Manifest(
        task=task,
        version=version or sha[:12],
        sources=tuple(sorted(set(sources))),
        counts={split: len(splits[split]) for split in SPLITS},
        dropped=dict(sorted(dropped.items())),
        eval_share=eval_share,
        rules=dict(rules or {}),
        sha256=sha,
    )
    output.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        (output / f"{split}.jsonl").write_bytes(files[split])
    (output / MANIFEST).write_text(manifest.model_dump_json(indent=2) + "\n", "utf-8")
    return manifest


def read_dataset(path: Path) -> tuple[Manifest, dict[Split, list[Example]]]:
    """A dataset's manifest and splits, checked against the manifest's hash."""
    manifest = Manifest.model_validate_json((path / MANIFEST).read_text("utf-8"))
    files = {split: (path / f"{split}.jsonl").read_bytes() for split in SPLITS}
    if content_hash(files) != manifest.sha256:
        raise DatasetCorrupt(f"{path}: the files do not match the manifest's sha256")
    splits: dict[Split, list[Example]] = {
        split: [Example.model_validate_json(line) for line in files[split].splitlines() if line]
        for split in SPLITS
    }
    return manifest, splits
