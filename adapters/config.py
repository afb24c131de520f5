"""The model configuration every adapter exposes as ``model.cfg``."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Dimensions and identity of an adapted model, in TransformerLens vocabulary."""

    architecture: str  # interv's family name, e.g. "llama"
    model_type: str  # transformers' config.model_type, e.g. "qwen2"
    name: str  # where the model came from (folder, hub id or default-model name)
    n_layers: int
    d_model: int
    d_mlp: int
    n_heads: int
    n_kv_heads: int
    d_head: int
    d_vocab: int
    n_ctx: int
    tied_embeddings: bool
    parallel_attn_mlp: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)
