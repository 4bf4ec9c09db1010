"""A trained adapter's directory, as `skiff flywheel train` writes it and workers load it.

    <dir>/training.json    the manifest: what was trained on what, and `files`, the sha256
                           of every exported file by its path relative to <dir>
    <dir>/adapter.gguf     the GGUF LoRA adapter for llama.cpp
    <dir>/peft/            the peft adapter for SGLang (adapter_config.json,
                           adapter_model.safetensors)

A model card names the directory (`adapter`) and the sha256 of its manifest
(`adapter_sha256`); the manifest pins every file. So a worker that finds the manifest's hash
equal to the card's, and each file's hash equal to the manifest's, loads exactly what was
evaluated and registered, nothing altered or half-copied.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from skiff_contracts.registry import ModelCard

MANIFEST = "training.json"
GGUF_FILE = "adapter.gguf"
PEFT_DIR = "peft"
ENGINE_FILES = {"llamacpp": GGUF_FILE, "sglang": PEFT_DIR}


class AdapterError(Exception):
    """The card's adapter cannot be served: missing, altered, or not for this engine."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def manifest_files(directory: Path) -> dict[str, str]:
    """The manifest's `files` (relative path → sha256)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError) as error:
        raise AdapterError(f"no readable {MANIFEST} in {directory}: {error}") from error
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        raise AdapterError(f"{directory / MANIFEST} lists no files")
    return {str(name): str(sha) for name, sha in files.items()}


def verify(directory: Path, expected_manifest_sha256: str | None) -> dict[str, str]:
    """Check the manifest against the expected hash and every listed file against the
    manifest; the listed files."""
    if not expected_manifest_sha256:
        raise AdapterError("the card has no adapter_sha256: refusing an unpinned adapter")
    manifest = directory / MANIFEST
    if not manifest.is_file():
        raise AdapterError(f"{manifest} is missing")
    if file_sha256(manifest) != expected_manifest_sha256:
        raise AdapterError(f"{manifest} does not match the card's adapter_sha256")
    files = manifest_files(directory)
    for name, sha in files.items():
        path = directory / name
        if not path.is_file() or file_sha256(path) != sha:
            raise AdapterError(f"{path} is missing or does not match its manifest")
    return files


def adapter_path(card: ModelCard, engine_kind: str) -> Path:
    """The checked file (llama.cpp) or directory (SGLang) that serves `card` on `engine_kind`."""
    if card.adapter is None:
        raise AdapterError(f"{card.model_id} has no adapter")
    if engine_kind not in ENGINE_FILES:
        raise AdapterError(f"the {engine_kind} engine serves no adapters")
    directory = Path(card.adapter)
    files = verify(directory, card.adapter_sha256)
    wanted = ENGINE_FILES[engine_kind]
    if not any(name == wanted or name.startswith(f"{wanted}/") for name in files):
        raise AdapterError(f"{directory} has no {wanted} for the {engine_kind} engine")
    return directory / wanted
