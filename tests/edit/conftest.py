"""Fixtures for the locate-then-edit tests: a 4-layer tiny Llama whose tokenizer has whole-word
tokens for a few targets (a byte tokenizer makes every answer three tokens and a random model
cannot be taught those through one position), and statistics caches in temporary folders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models
from tokenizers.pre_tokenizers import ByteLevel
from transformers import PreTrainedTokenizerFast

from interv.stats import StatsCache
from tests.tiny import randomise

WORDS = ("mat", "zq", "Rome", "Paris")  # single tokens with a leading space


def word_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {ch: i for i, ch in enumerate(sorted(ByteLevel.alphabet()))}
    merges = []
    for word in WORDS:
        piece = "Ġ"
        for ch in word:
            merges.append((piece, ch))
            piece += ch
            vocab.setdefault(piece, len(vocab))
    for special in ("<pad>", "<bos>", "<eos>"):
        vocab[special] = len(vocab)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.pre_tokenizer = ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )


def build_edit_tiny(folder: Path) -> Path:
    from transformers import AutoModelForCausalLM, LlamaConfig

    tokenizer = word_tokenizer()
    vocab = len(tokenizer)
    config = LlamaConfig(
        hidden_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        max_position_embeddings=1024,  # SERAC puts long contexts before routed rows
        vocab_size=vocab,
        bos_token_id=vocab - 2,
        eos_token_id=vocab - 1,
        pad_token_id=vocab - 3,
    )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    randomise(model, 0)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


# Hyperparameters that edit the tiny model: its activations are large (norm ~100) and random,
# so the value needs a large learning rate and norm budget.
TINY = dict(
    fact_token="last",
    mom2_n_samples=2000,
    context_template_length_params=[[3, 2]],
    v_lr=20.0,
    clamp_norm_factor=20.0,
    v_num_grad_steps=25,
    kl_factor=0.0,
)


@pytest.fixture(scope="session")
def edit_tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_edit_tiny(tmp_path_factory.mktemp("edit_tiny"))


@pytest.fixture
def edit_tiny(edit_tiny_dir: Path):
    import interv

    return interv.load(edit_tiny_dir, device="cpu")


@pytest.fixture(scope="session")
def stats_cache(tmp_path_factory: pytest.TempPathFactory) -> StatsCache:
    return StatsCache(tmp_path_factory.mktemp("stats"))


class RealStats:
    """A small statistics sample for real-model tests, computed once per session."""

    def __init__(self, cache: StatsCache, n_tokens: int):
        self.cache, self.n_tokens = cache, n_tokens


@pytest.fixture(scope="session")
def real_stats(tmp_path_factory: pytest.TempPathFactory) -> RealStats:
    return RealStats(StatsCache(tmp_path_factory.mktemp("real_stats")), 4000)


# Two facts for MEND's archive on the tiny model, each with a paraphrase and an unrelated probe.
MEND_FACTS = [
    dict(prompt="Hello world, this is", target_new="Rome", rephrase_prompts=["Hello world, it is"]),
    dict(prompt="The cat sat on the", target_new="mat", rephrase_prompts=["A cat sat on the"]),
]
MEND_PROBES = {"nq": [("The dog ran to the", "Paris"), ("A bird flew over", "zq")]}


@pytest.fixture(scope="session")
def mend_archive(edit_tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A MEND archive for the tiny model, trained on MEND_FACTS alone and in pairs."""
    import interv
    from interv.edit.mend import MENDHParams
    from interv.edit.mend_training import train
    from interv.requests import EditRequest

    model = interv.load(edit_tiny_dir, device="cpu")
    facts = [EditRequest(**f, locality=MEND_PROBES) for f in MEND_FACTS]
    hp = MENDHParams(
        inner_params=["blocks.2.mlp.W_out", "blocks.3.mlp.W_in", "blocks.3.mlp.W_out"],
        rank=16,
        max_iters=80,
        val_interval=40,
        accumulate_bs=2,
        batch_size=2,
        lr=1e-3,
        lr_lr=1e-2,
        edit_lr=1e-3,
        cedit=1.0,
    )
    out = tmp_path_factory.mktemp("mend")
    return train(model, facts, facts, hp, out, resume=False, progress=False).path


@pytest.fixture(scope="session")
def serac_archive(edit_tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SERAC archive shipped for the default model, re-recorded for the tiny model: its
    scope classifier works on text, so it routes the tiny model's inputs as it would the
    default model's (``interv train serac`` itself is tested in tests/edit/test_serac.py)."""
    from dataclasses import replace
    from importlib.resources import files

    import interv
    from interv.edit.serac import SERACArchive
    from interv.record import ModelRecord

    shipped = files("interv.edit") / "archives" / "SmolLM2-135M-Instruct.serac.safetensors"
    archive = SERACArchive.load(str(shipped))
    model = interv.load(edit_tiny_dir, device="cpu")
    tiny = replace(archive, model=ModelRecord.of(model))
    return tiny.save(tmp_path_factory.mktemp("serac") / "serac.safetensors")
