"""The model configuration every adapter exposes as ``model.cfg``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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


def read_config(hf_config: Any, architecture: str, name: str, parallel: bool) -> ModelConfig:
    """Canonical dimensions from a ``transformers`` config (GPT-2 names resolve via
    attribute_map)."""
    d_model = hf_config.hidden_size
    n_heads = hf_config.num_attention_heads
    d_mlp = getattr(hf_config, "intermediate_size", None) or getattr(hf_config, "n_inner", None)
    n_ctx = getattr(hf_config, "max_position_embeddings", None) or hf_config.n_positions
    return ModelConfig(
        architecture=architecture,
        model_type=hf_config.model_type,
        name=name,
        n_layers=hf_config.num_hidden_layers,
        d_model=d_model,
        d_mlp=d_mlp or 4 * d_model,
        n_heads=n_heads,
        n_kv_heads=getattr(hf_config, "num_key_value_heads", None) or n_heads,
        d_head=getattr(hf_config, "head_dim", None) or d_model // n_heads,
        d_vocab=hf_config.vocab_size,
        n_ctx=n_ctx,
        tied_embeddings=bool(getattr(hf_config, "tie_word_embeddings", False)),
        parallel_attn_mlp=parallel,
    )
