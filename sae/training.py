"""Training an SAE on one hook of an interv model with sae-lens's trainer.

Activations are read through interv's canonical hooks (any backend, no TransformerLens
model, no hub download) from a local corpus, cached on disk (``interv.sae.activations``) and
fed to ``sae_lens.SAETrainer`` as shuffled batches, several epochs if ``tokens`` exceeds the
distinct tokens read. TopK (``k`` active features) or JumpReLU (quadratic L0 loss with
target ``k``) architectures. The result is a sae-lens folder plus ``training.json`` with the
held-out explained variance, L0 and dead-feature share.

Example (with the default model)::

    import interv
    from interv.sae.training import TrainConfig, train
    cfg = TrainConfig(hook="blocks.12.hook_resid_post", features=2048, tokens=1_000_000)
    sae, report = train(interv.load(), cfg, "my_sae")
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..adapters import HookedModel
from ..errors import ConfigError
from ..files import staged_files, write_text
from ..hparams import HParams
from ..record import ModelRecord
from . import activations, corpus
from .hooked import HookedSAE
from .loading import canonical_hook, load_from_disk, width
from .metrics import evaluate

log = logging.getLogger(__name__)

ARCHITECTURES = ("topk", "jumprelu")
REPORT_FILE = "training.json"


@dataclass(kw_only=True)
class TrainConfig(HParams):
    method = "sae"
    hook: str = "blocks.12.hook_resid_post"
    features: int = 2048  # d_sae
    architecture: str = "topk"
    k: int = 32  # TopK: active features per token; JumpReLU: the target L0
    tokens: int = 2_000_000  # activations the trainer sees (epochs over the distinct ones)
    distinct_tokens: int = 500_000  # activations read from the corpus (0: the whole split)
    corpus: str = "default"
    text_field: str | None = None  # JSONL/JSON corpora: which field holds the text
    heldout_percent: int = 5
    heldout_tokens: int = 20_000
    max_len: int = 128  # tokens per window
    batch_size: int = 4096  # training batch, in tokens
    read_batch_size: int = 32  # windows per forward when reading activations
    lr: float = 1e-3
    lr_warm_up_steps: int = 20
    lr_decay_fraction: float = 0.2  # linear decay over the last part of training
    l0_coefficient: float = 1.0  # JumpReLU quadratic L0 loss
    dead_feature_window: int = 100  # steps without firing before a feature counts as dead
    seed: int = 0
    save_dtype: str = "float16"

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"architecture must be one of {ARCHITECTURES}, not {self.architecture!r}."
            )
        for name in ("features", "k", "tokens", "batch_size", "max_len", "heldout_tokens"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}.")
        if self.k > self.features:
            raise ConfigError(f"k={self.k} exceeds features={self.features}.")
        if self.distinct_tokens < 0 or self.lr <= 0 or not 0 <= self.lr_decay_fraction <= 1:
            raise ConfigError("distinct_tokens must be >= 0, lr > 0, lr_decay_fraction in [0, 1].")
        if self.save_dtype not in ("float16", "bfloat16", "float32"):
            raise ConfigError(
                f"save_dtype must be float16, bfloat16 or float32, not {self.save_dtype!r}."
            )


def train(
    model: HookedModel,
    cfg: TrainConfig,
    out: str | Path,
    *,
    progress: bool = True,
    cache_dir: Path | None = None,
) -> tuple[HookedSAE, dict[str, Any]]:
    """Train, save to ``out`` (sae-lens folder + training.json) and evaluate on held-out text."""
    from sae_lens.training.sae_trainer import SAETrainer

    hook = canonical_hook(cfg.hook, model)
    train_docs, heldout_docs = corpus.split(
        corpus.load_documents(cfg.corpus, cfg.text_field), cfg.heldout_percent
    )
    started = time.perf_counter()
    acts = _read(model, hook, train_docs, cfg.distinct_tokens or 10**12, cfg, cache_dir, progress)
    read_seconds = time.perf_counter() - started
    torch.manual_seed(cfg.seed)
    sae = _training_sae(model, hook, cfg)
    trainer = SAETrainer(
        _trainer_config(cfg, acts.shape[0]),
        sae,
        activations.batches(acts, min(cfg.batch_size, acts.shape[0]), cfg.seed),
    )
    started = time.perf_counter()
    trainer.fit()  # sae-lens shows its own progress bar
    train_seconds = time.perf_counter() - started
    out = Path(out)
    with staged_files(out) as staging:  # each file lands whole, by a rename
        sae.save_inference_model(str(staging))
        _convert(staging, cfg.save_dtype)
    loaded = load_from_disk(out, id=out.name)
    heldout = _read(model, hook, heldout_docs, cfg.heldout_tokens, cfg, cache_dir, progress)
    report = {
        "hook": hook,
        "model": model.cfg.name,
        "config": cfg.to_dict(),
        "distinct_tokens": int(acts.shape[0]),
        "tokens": trainer.n_training_samples,
        "epochs": round(trainer.n_training_samples / acts.shape[0], 2),
        "read_seconds": round(read_seconds, 1),
        "read_tokens_per_second": round(acts.shape[0] / max(read_seconds, 1e-9), 1),
        "train_seconds": round(train_seconds, 1),
        "heldout": evaluate(loaded, heldout),
    }
    write_text(out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    log.info("Trained %s: %s", out, report["heldout"])
    return loaded, report


def _read(
    model: HookedModel,
    hook: str,
    docs: list[str],
    n_tokens: int,
    cfg: TrainConfig,
    cache_dir: Path | None,
    progress: bool,
) -> Tensor:
    """Activations at ``hook`` for up to ``n_tokens`` distinct tokens of ``docs`` (cached)."""
    return activations.cached(
        model,
        hook,
        docs,
        n_tokens,
        max_len=cfg.max_len,
        batch_size=cfg.read_batch_size,
        cache_dir=cache_dir,
        progress=progress,
    )


def _training_sae(model: HookedModel, hook: str, cfg: TrainConfig) -> Any:
    from sae_lens.saes.jumprelu_sae import JumpReLUTrainingSAE, JumpReLUTrainingSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    metadata = SAEMetadata(
        model_name=model.cfg.name,
        hook_name=hook,
        context_size=cfg.max_len,
        prepend_bos=bool(model.tokenizer("a")["input_ids"][0] == model.tokenizer.bos_token_id),
        seqpos_slice=[activations.SKIP_FIRST, None],
        dataset=cfg.corpus,
        interv_model=ModelRecord.of(model).to_dict(),
    )
    common = dict(
        d_in=width(model, hook),
        d_sae=cfg.features,
        dtype="float32",
        device="cpu",
        normalize_activations="expected_average_only_in",
        metadata=metadata,
    )
    if cfg.architecture == "topk":
        return TopKTrainingSAE(TopKTrainingSAEConfig(k=cfg.k, **common))
    return JumpReLUTrainingSAE(
        JumpReLUTrainingSAEConfig(
            jumprelu_sparsity_loss_mode="quadratic",
            target_l0=float(cfg.k),
            l0_coefficient=cfg.l0_coefficient,
            **common,
        )
    )


def _trainer_config(cfg: TrainConfig, distinct: int) -> Any:
    from sae_lens.config import LoggingConfig, SAETrainerConfig

    batch = min(cfg.batch_size, distinct)
    steps = max(1, cfg.tokens // batch)
    decay = int(steps * cfg.lr_decay_fraction)
    return SAETrainerConfig(
        total_training_samples=steps * batch,
        train_batch_size_samples=batch,
        lr=cfg.lr,
        lr_end=cfg.lr / 10 if decay else cfg.lr,
        lr_warm_up_steps=min(cfg.lr_warm_up_steps, steps // 4),
        lr_decay_steps=decay,
        device="cpu",
        dead_feature_window=cfg.dead_feature_window,
        feature_sampling_window=max(cfg.dead_feature_window, 2),
        n_batches_for_norm_estimate=10,
        logger=LoggingConfig(log_to_wandb=False),
    )


def _convert(folder: Path, dtype: str) -> None:
    """Store the weights in ``dtype`` (fp16 by default) and say so in cfg.json."""
    from safetensors.torch import load_file, save_file

    weights = folder / "sae_weights.safetensors"
    tensors = {
        k: v.to(getattr(torch, dtype)) if v.is_floating_point() else v
        for k, v in load_file(str(weights)).items()
    }
    save_file(tensors, str(weights))
    cfg_path = folder / "cfg.json"
    config = json.loads(cfg_path.read_text())
    config["dtype"] = dtype
    cfg_path.write_text(json.dumps(config, indent=1) + "\n")
