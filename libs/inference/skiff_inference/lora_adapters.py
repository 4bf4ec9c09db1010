"""LoRA adapters on one llama.cpp context: loaded by name, at most one applied per call.

Adapters are GGUF LoRA files (`general.type = "adapter"`, `adapter.type = "lora"`) made for
the loaded model's architecture and shapes; llama.cpp checks both and refuses a mismatch at
load. Loading reads the file into its own buffers next to the model's (a few MB for a
rank-8 adapter of SmolLM2-135M) and does not touch the context, so it needs no restart and
does not disturb a KV cache. Applying one sets it on the context
(`llama_set_adapters_lora`, which does nothing when the same adapters are already set); the
next decode then runs base weights plus the adapter's low-rank product, scaled by
`adapter.lora.alpha / rank` as peft scales it.

Each load gets a new `AdapterKey`, and `apply` returns the key now in effect: the KV cache's
owner. The cache holds keys and values computed under one adapter (or none), so a caller
must drop any cached prefix whose owner is not the key in effect; reloading a name with a
new file gives a new key, so a prefix computed under the old weights is never reused.
"""

from __future__ import annotations

import ctypes
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp

from skiff_inference.engine import EngineError


@dataclass(frozen=True)
class AdapterKey:
    """Which adapter weights a KV cache entry was computed under: a name and a load number."""

    name: str
    load: int


@dataclass(frozen=True)
class _Loaded:
    key: AdapterKey
    path: Path
    handle: Any  # llama_adapter_lora_p


class AdapterSet:
    """The adapters loaded for one model, and the one applied to its context.

    Not thread-safe: the engine calls it under its own lock, between decodes.
    """

    def __init__(self, llm: llama_cpp.Llama) -> None:
        self._model = llm.model
        self._ctx = llm.ctx
        self._loaded: dict[str, _Loaded] = {}
        self._applied: _Loaded | None = None
        self._loads = itertools.count(1)

    @property
    def names(self) -> tuple[str, ...]:
        """The names loaded, sorted."""
        return tuple(sorted(self._loaded))

    def path_of(self, name: str) -> Path:
        """The file adapter `name` was loaded from."""
        return self._get(name).path

    def load(self, name: str, path: Path) -> None:
        """Load `path` under `name`, replacing an adapter loaded under that name before.

        The old weights stay in use until the new file has loaded, so a bad file leaves the
        name serving what it served. Raises a non-transient `EngineError` for a missing file
        or one llama.cpp refuses (wrong architecture, wrong shapes, not a LoRA adapter).
        """
        if not name:
            raise EngineError("an adapter needs a non-empty name", transient=False)
        if not path.is_file():
            raise EngineError(f"no adapter file at {path}", transient=False)
        handle = llama_cpp.llama_adapter_lora_init(self._model, str(path).encode("utf-8"))
        if not handle:
            raise EngineError(
                f"llama.cpp refused the adapter {path} for this model (see its log: "
                "architecture, tensor names and shapes must match the base model)",
                transient=False,
            )
        old = self._loaded.get(name)
        self._loaded[name] = _Loaded(AdapterKey(name, next(self._loads)), path, handle)
        if old is not None:
            self._free(old)

    def unload(self, name: str) -> None:
        """Free adapter `name`; unknown names raise a non-transient `EngineError`."""
        self._free(self._get(name))
        del self._loaded[name]

    def apply(self, name: str | None) -> AdapterKey | None:
        """Put adapter `name` (None: the base model) on the context; return its key."""
        wanted = None if name is None else self._get(name)
        if wanted is not self._applied:
            self._set(wanted)
        return None if wanted is None else wanted.key

    def close(self) -> None:
        """Take every adapter off the context and free it (before the model is freed)."""
        for loaded in list(self._loaded.values()):
            self._free(loaded)
        self._loaded.clear()

    def _get(self, name: str) -> _Loaded:
        loaded = self._loaded.get(name)
        if loaded is None:
            known = ", ".join(self.names) or "none"
            raise EngineError(
                f"no adapter named {name!r} is loaded (loaded: {known})", transient=False
            )
        return loaded

    def _set(self, loaded: _Loaded | None) -> None:
        if loaded is None:
            status = llama_cpp.llama_set_adapters_lora(self._ctx, None, 0, None)
        else:
            handles = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(loaded.handle)
            scales = (ctypes.c_float * 1)(1.0)
            status = llama_cpp.llama_set_adapters_lora(self._ctx, handles, 1, scales)
        if status != 0:
            raise EngineError(
                f"llama.cpp could not set the adapter (status {status})", transient=False
            )
        self._applied = loaded

    def _free(self, loaded: _Loaded) -> None:
        # The context holds a pointer to the adapter it applies: take it off first.
        if self._applied is loaded:
            self._set(None)
        llama_cpp.llama_adapter_lora_free(loaded.handle)
