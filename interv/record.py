"""Which model an artefact belongs to: one record, one check, for every kind of artefact.

Weight patches, steering vectors, intervention graphs and SAEs record the model they were
made on with a ``ModelRecord`` (name, architecture, widths, fingerprint and a small sample of
the weights) and refuse another model with one ``ModelMismatchError`` from ``check``. The
weights are compared through their sample (``interv.adapters.identity``), so a float32, a
bfloat16 and a float16 load of the same checkpoint, on any device, are the same model.

Files written before the record existed carry their model as a bare fingerprint (patches) or a
dict of name, architecture, widths and fingerprint (vectors, graphs); ``from_dict`` reads both
and ``check`` compares such a fingerprint with the one those files were written with.

Example:
    >>> from interv.record import ModelRecord
    >>> ModelRecord.from_dict({"name": "tiny", "architecture": "llama", "d_model": 32})
    ModelRecord('tiny', llama, d_model=32)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .adapters import HookedModel, identity
from .errors import ModelMismatchError

DIMS = ("n_layers", "d_model", "d_mlp", "n_heads", "n_kv_heads", "d_head", "d_vocab")
SHAPE_FIELDS = ("name", "architecture", "model_type", *DIMS)  # read from the model's cfg


@dataclass(frozen=True)
class ModelRecord:
    """Identity of the model an artefact's tensors were computed on (fields may be empty for
    artefacts imported from other tools, which say less)."""

    name: str = ""
    architecture: str = ""  # interv's family (llama, gpt2...)
    model_type: str = ""  # transformers' (qwen2, mistral...)
    n_layers: int | None = None
    d_model: int | None = None
    d_mlp: int | None = None
    n_heads: int | None = None
    n_kv_heads: int | None = None
    d_head: int | None = None
    d_vocab: int | None = None
    fingerprint: str = ""
    sample: str = ""  # base64 float32 weight values (interv.adapters.identity)
    sample_dtype: str = ""  # the precision they were read at

    @classmethod
    def of(cls, model: HookedModel) -> ModelRecord:
        values, dtype = model.weight_sample()
        shape = {name: getattr(model.cfg, name) for name in SHAPE_FIELDS}
        return cls(
            **shape,
            fingerprint=model.fingerprint(),
            sample=identity.encode_sample(values),
            sample_dtype=dtype,
        )

    # ------------------------------------------------------------------ comparing
    def differences(self, model: HookedModel) -> list[str]:
        """What differs between the recorded model and ``model`` (empty: the same model)."""
        return self._differences(ModelRecord.of(model), model.legacy_fingerprint())

    def _differences(self, other: ModelRecord, legacy: str = "") -> list[str]:
        found = []
        for key in ("architecture", "model_type"):
            mine, theirs = getattr(self, key), getattr(other, key)
            if mine and theirs and mine != theirs:
                found.append(f"{key} {mine!r} != {theirs!r}")
        for dim in DIMS:
            mine, theirs = getattr(self, dim), getattr(other, dim)
            if mine is not None and theirs is not None and mine != theirs:
                found.append(f"{dim} {mine} != {theirs}")
        if not found and not self._same_weights(other, legacy):
            found.append(
                f"weights differ (fingerprint {self.fingerprint or '?'} != "
                f"{other.fingerprint or '?'})"
            )
        return found

    def _same_weights(self, other: ModelRecord, legacy: str) -> bool:
        if self.sample and other.sample:
            return identity.same_weights(
                identity.decode_sample(self.sample),
                self.sample_dtype,
                identity.decode_sample(other.sample),
                other.sample_dtype,
            )
        if self.fingerprint and other.fingerprint:  # a file from before samples were recorded
            return self.fingerprint in (other.fingerprint, legacy)
        return True  # nothing recorded to tell them apart (an imported artefact)

    def compatible(self, other: ModelRecord | None) -> bool:
        """Whether artefacts of the two records may be combined (stacked, added, merged)."""
        return other is None or not self._differences(other)

    def check(self, model: HookedModel, what: str = "This artefact") -> None:
        """Refuse a model that differs in architecture, widths or weights."""
        found = self.differences(model)
        if found:
            raise ModelMismatchError(
                f"{what} was made for {self.name or 'another model'!r}, not for "
                f"{model.cfg.name!r} ({'; '.join(found)}). Load the model it was made for, or "
                "recompute it on this one; if you know the weights are the same, clear its "
                "record (set its `model` to None)."
            )

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in ("", None)}

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> ModelRecord | None:
        """A record from its saved form (or an older file's model dict); None for none."""
        if not data:
            return None
        if not isinstance(data, dict):
            raise ModelMismatchError(f"A model record must be a mapping, got {data!r}.")
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known and v is not None}
        return cls(**values)

    @classmethod
    def from_fingerprint(cls, fingerprint: str | None) -> ModelRecord | None:
        """The record of a file that saved only the model's fingerprint."""
        return cls(fingerprint=fingerprint) if fingerprint else None

    def __repr__(self) -> str:
        dims = ", ".join(f"{d}={getattr(self, d)}" for d in DIMS if getattr(self, d) is not None)
        parts = [
            repr(self.name),
            self.architecture or "?",
            dims,
            f"fingerprint={self.fingerprint}" if self.fingerprint else "",
        ]
        return f"ModelRecord({', '.join(p for p in parts if p)})"
