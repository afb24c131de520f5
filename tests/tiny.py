"""Tiny random-weight models of every supported family, built from configs (no downloads).

Every parameter is randomised, norms included, so a hook that reads before instead of after a
norm's weight cannot pass a parity test by accident.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models
from tokenizers.pre_tokenizers import ByteLevel
from transformers import (
    AutoModelForCausalLM,
    Gemma2Config,
    GemmaConfig,
    GPT2Config,
    GPTNeoXConfig,
    LlamaConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<eos>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

_SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)


def byte_tokenizer(chat_template: bool = True) -> PreTrainedTokenizerFast:
    """A byte-level tokenizer: 256 byte tokens plus <pad>, <bos>, <eos>."""
    vocab = {ch: i for i, ch in enumerate(sorted(ByteLevel.alphabet()))}
    for special in ("<pad>", "<bos>", "<eos>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )
    if chat_template:
        tok.chat_template = CHAT_TEMPLATE
    return tok


VOCAB = len(byte_tokenizer())


def _configs() -> dict[str, object]:
    ids = dict(
        vocab_size=VOCAB, bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1, pad_token_id=VOCAB - 3
    )
    return {
        "llama": LlamaConfig(**_SMALL, num_key_value_heads=2, max_position_embeddings=128, **ids),
        "qwen2": Qwen2Config(**_SMALL, num_key_value_heads=2, max_position_embeddings=128, **ids),
        "gpt2": GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=128, **ids),
        "gpt_neox": GPTNeoXConfig(**_SMALL, rotary_pct=0.5, max_position_embeddings=128, **ids),
        "gpt_neox_sequential": GPTNeoXConfig(
            **_SMALL,
            rotary_pct=0.5,
            use_parallel_residual=False,
            max_position_embeddings=128,
            **ids,
        ),
        "gemma": GemmaConfig(
            **_SMALL, num_key_value_heads=1, head_dim=8, max_position_embeddings=128, **ids
        ),
        "gemma2": Gemma2Config(
            **_SMALL,
            num_key_value_heads=2,
            head_dim=8,
            max_position_embeddings=128,
            sliding_window=64,
            final_logit_softcapping=None,
            **ids,
        ),
    }


FAMILIES = tuple(_configs())


def randomise(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator)
            is_norm = "norm" in name or ".ln" in name or name.endswith(("ln_f.weight", "ln_f.bias"))
            param.copy_(1.0 + 0.2 * noise if is_norm and name.endswith("weight") else 0.3 * noise)


def build_tiny(family: str, folder: Path, seed: int = 0, n_ctx: int | None = None) -> Path:
    """Write a tiny random model of ``family`` with a byte tokenizer into ``folder`` (with a
    context window of ``n_ctx`` positions instead of 128 when given; rotary families only)."""
    config = _configs()[family]
    if n_ctx is not None:
        config.max_position_embeddings = n_ctx
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    randomise(model, seed)
    model.save_pretrained(folder)
    byte_tokenizer().save_pretrained(folder)
    return folder
