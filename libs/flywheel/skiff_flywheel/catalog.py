"""The catalog of base models S4 (select) names for a fine-tune, and the rule that picks one.

The catalog is a committed JSON file (`data/base_models.json`). Per model: its name,
parameter count and context length; a capacity, `max_output_fields`, the most answer fields
it is suited to, counted as S4 counts them (anchored on SmolLM2-135M, which serves the
widest of today's answers, the hotels request's 13 keys; the larger models' figures are
judgement); where llama.cpp gets its GGUF (an installed package and file, or null when the
GGUF is made at export); its Hugging Face id (what SGLang serves and the fine-tune starts
from); and its price per million tokens. `SKIFF_FLYWHEEL__CATALOG` (or the CLI's
`--catalog`) points at another file of the same form.

**The rule.** The smallest model (by parameters, then name) whose capacity covers the work's
schema size and whose context length covers the 95th percentile of its calls' tokens: a
smaller model is cheaper and faster to serve and to fine-tune, and the schema's width is
what makes structured extraction hard for a small model. When no model fits, the one with
the largest capacity is named and the reason says it does not fit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from skiff_extraction.pricing import MILLION, ModelPrice

DEFAULT_CATALOG = Path(__file__).parent / "data" / "base_models.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GgufSource(_Frozen):
    """A GGUF file shipped inside an installed Python package."""

    package: str
    file: str


class CatalogModel(_Frozen):
    """One base model a task can be fine-tuned from."""

    name: str = Field(min_length=1)
    parameters: int = Field(gt=0)
    context_length: int = Field(gt=0, description="tokens")
    max_output_fields: int = Field(gt=0, description="capacity: the widest schema it suits")
    gguf: GgufSource | None = Field(description="for llama.cpp; null: made at export")
    hf_id: str = Field(min_length=1, description="for SGLang and as the fine-tune's base")
    price: ModelPrice

    def cost_per_call(self, tokens_in: float, tokens_out: float) -> float:
        """US dollars for one call of that many tokens on this model."""
        rate = self.price
        dollars = tokens_in * rate.input_usd_per_mtok + tokens_out * rate.output_usd_per_mtok
        return dollars / MILLION


class Catalog(_Frozen):
    catalog_version: int
    note: str = ""
    models: tuple[CatalogModel, ...] = Field(min_length=1)


class CatalogError(Exception):
    """The catalog file is missing, not JSON, or not a catalog."""


class FlywheelSettings(BaseSettings):
    """`SKIFF_FLYWHEEL__CATALOG`: another catalog file."""

    model_config = SettingsConfigDict(env_prefix="SKIFF_FLYWHEEL__", extra="ignore", frozen=True)

    catalog: Path | None = None


@dataclass(frozen=True)
class Choice:
    """The base model named for a cluster, and why."""

    model: CatalogModel
    fits: bool
    reason: str


def catalog_path(path: Path | None = None) -> Path:
    """`path`, else the setting, else the committed catalog."""
    return path or FlywheelSettings().catalog or DEFAULT_CATALOG


def load_catalog(path: Path | None = None) -> Catalog:
    """The catalog at `catalog_path(path)`."""
    where = catalog_path(path)
    try:
        return Catalog.model_validate(json.loads(where.read_text(encoding="utf-8")))
    except OSError as error:
        raise CatalogError(f"cannot read the catalog {where}: {error}") from error
    except (json.JSONDecodeError, ValidationError) as error:
        raise CatalogError(f"{where} is not a base-model catalog: {error}") from error


def choose(catalog: Catalog, fields: int | None, tokens: int) -> Choice:
    """The smallest model whose capacity covers `fields` and whose context covers `tokens`
    (`fields` None: the schema is unknown, so only the context is checked)."""
    ordered = sorted(catalog.models, key=lambda model: (model.parameters, model.name))
    need = fields or 0
    for model in ordered:
        if model.max_output_fields >= need and model.context_length >= tokens:
            if fields is None:
                why = "schema unknown (no answers logged): the smallest model is named"
            else:
                why = (
                    f"smallest whose capacity ({model.max_output_fields} fields) covers the "
                    f"{fields}-field schema"
                )
            return Choice(model, True, f"{why}; context {model.context_length} ≥ {tokens} tokens")
    widest = max(ordered, key=lambda model: (model.max_output_fields, model.context_length))
    return Choice(
        widest,
        False,
        f"no catalog model fits {need} fields and {tokens} tokens; the widest "
        f"({widest.max_output_fields} fields, context {widest.context_length}) is named",
    )
