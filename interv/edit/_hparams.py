"""The hyperparameters every locate-then-edit method has (public as
``interv.edit.locate.LocateHParams``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError
from ..hparams import HParams
from ..tokens import FACT_TOKENS
from ._templates import SOURCES, check_subject_prompts


@dataclass(kw_only=True)
class LocateHParams(HParams):
    """Hyperparameters every locate-then-edit method has (defaults tuned for SmolLM2-135M).

    Field names follow EasyEdit's YAML keys where the concept is the same, so EasyEdit files
    load after their module-path keys are dropped. interv-only fields: ``v_stop_prob`` (early
    stop), ``v_chunk_size`` (requests optimised per forward), ``context_template_source``,
    ``subject_prompts`` (value rows beyond the edit prompt's wording), ``model_dims`` (refuse
    a model of other dimensions) and ``trace_prompts`` (for ``layers: auto``).
    """

    layers: list[int] | str = field(default_factory=lambda: [5])
    fact_token: str = "subject_last"
    v_num_grad_steps: int = 20
    v_lr: float = 4.0  # SmolLM2-135M: activations at the edit sites have norms of 15-150
    v_loss_layer: int = -1  # the loss is always on the logits; EasyEdit's n_layers - 1 is accepted
    v_weight_decay: float = 1e-3
    # the optimised change's norm, at most this times the activation's mean norm; MEMIT's own
    # value (its z is in the residual stream); ROME overrides it
    clamp_norm_factor: float = 0.75
    kl_factor: float = 0.0625
    v_stop_prob: float = 0.9
    v_chunk_size: int = 8
    context_template_length_params: list[list[int]] = field(default_factory=lambda: [[5, 2]])
    context_template_source: str = "corpus"
    # relation-free prompts ("{}" is the subject) that must continue with target_new too, each
    # in the place of the edit prompt in some context templates (_templates.subject_slots);
    # they need a subject lookup (not used with fact_token: last)
    subject_prompts: list[str] = field(default_factory=list)
    mom2_dataset: str = "default"  # "default" (shipped corpus) or a .txt / .jsonl / .json file
    mom2_n_samples: int = 100_000  # tokens
    mom2_dtype: str = "float32"
    model_dims: dict[str, int] | None = None  # e.g. {n_layers: 30, d_model: 576, d_mlp: 1536}
    trace_prompts: int = 8

    def value_subject_prompts(self) -> list[str]:
        """The subject prompts the value optimisation uses: none when the lookup token is the
        prompt's last (``fact_token: last``), which a subject prompt does not share."""
        return [] if self.fact_token == "last" else list(self.subject_prompts)

    def __post_init__(self) -> None:
        if isinstance(self.layers, str):
            if self.layers != "auto":
                raise ConfigError(
                    f"layers must be a list of layer indices or 'auto', got {self.layers!r}."
                )
        elif not self.layers or any(not isinstance(x, int) or x < 0 for x in self.layers):
            raise ConfigError(
                f"layers must be a non-empty list of layer indices >= 0, got {self.layers!r}."
            )
        if self.fact_token not in FACT_TOKENS:
            raise ConfigError(f"fact_token must be one of {FACT_TOKENS}, got {self.fact_token!r}.")
        check_subject_prompts(self.subject_prompts)
        if self.context_template_source not in SOURCES:
            raise ConfigError(
                f"context_template_source must be one of {SOURCES}, got "
                f"{self.context_template_source!r}."
            )
        positive = (
            "v_num_grad_steps",
            "v_lr",
            "clamp_norm_factor",
            "v_chunk_size",
            "mom2_n_samples",
            "trace_prompts",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)!r}.")
        for name in ("v_weight_decay", "kl_factor"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)!r}.")
        if not 0 < self.v_stop_prob <= 1:
            raise ConfigError(f"v_stop_prob must be in (0, 1], got {self.v_stop_prob}.")
        if self.mom2_dtype not in ("float32", "float64"):
            raise ConfigError(f"mom2_dtype must be float32 or float64, got {self.mom2_dtype!r}.")
        for pair in self.context_template_length_params:
            if len(pair) != 2 or pair[0] < 1 or pair[1] < 0:
                raise ConfigError(
                    "context_template_length_params must be [[length, count], ...] "
                    f"with length >= 1, got {self.context_template_length_params!r}."
                )
