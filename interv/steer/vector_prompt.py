"""Vector prompt: a steering vector read off a steering prompt (EasyEdit2's ``vector_prompt``).

For each record ``{input, output, prompt}`` the model reads the input twice, once after the
steering prompt (``prompt + " " + input``) and once alone, each followed by the record's
output; the vector at each layer is the mean, over records, of the difference of the two
activations averaged over the output's tokens (the input's last token when a record has no
output). Applied, it carries what the prompt does to the model's state without the prompt in
the context. ``prompt`` is the default for records that do not name their own.

Example:
    >>> from interv.steer.vector_prompt import VectorPromptHParams
    >>> VectorPromptHParams(prompt="Talk about the ocean.").layers
    [10]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..adapters import HookedModel, names
from ..adapters.text import apply_chat_template
from ..errors import ConfigError, SteeringError
from ..hparams import HParams
from ..record import ModelRecord
from ..tokens import tokenize
from .activations import read_activations
from .base import STEER_METHODS, SteerMethod
from .vector import SteeringVector

Record = str | Mapping[str, Any]


@dataclass(kw_only=True)
class VectorPromptHParams(HParams):
    method = "vector_prompt"
    ee2_renames: ClassVar[dict[str, str]] = {"use_chat_template": "chat_template"}
    layers: list[int] = field(default_factory=lambda: [10])
    hook: str = "hook_resid_post"  # EasyEdit2 adds its vectors to the block output
    prompt: str = "Write a sentence about"  # EasyEdit2's default
    chat_template: bool = False
    system_prompt: str = ""
    batch_size: int = 16
    dataset: str = ""

    @classmethod
    def from_easyedit2(cls, values: dict[str, Any], source: str) -> dict[str, Any]:
        """EasyEdit2's ``generate_prompt_params`` asks a model to write the prompt; interv
        reads the one written in ``prompt`` (an empty mapping is accepted)."""
        out = dict(values)
        if out.pop("generate_prompt_params", None):
            raise ConfigError(
                f"{source}: vector_prompt does not have the model write its prompt "
                "(generate_prompt_params); write it in `prompt`."
            )
        return out

    def __post_init__(self) -> None:
        if not self.prompt.strip():
            raise ConfigError("vector_prompt needs a non-empty `prompt`.")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be at least 1, got {self.batch_size}.")


@STEER_METHODS.register("vector_prompt")
class VectorPrompt(SteerMethod[Sequence[Record], SteeringVector]):
    """Returns a ``SteeringVector``: with-prompt minus without-prompt activations."""

    name = "vector_prompt"
    hparams_class = VectorPromptHParams
    data_kind = "records"
    hparams: VectorPromptHParams

    def fit(self, model: HookedModel, data: Sequence[Record]) -> SteeringVector:
        """``data``: inputs, or records ``{input, output, prompt}`` (output and prompt
        optional)."""
        hp = self.hparams
        self.check_layers(model, hp.layers)
        records = [_record(r, hp.prompt) for r in data]
        if not records:
            raise SteeringError("The dataset is empty; vector_prompt needs inputs to read.")
        ids, spans = [], []
        for steered in (True, False):
            for prompt, text, output in records:
                head = self._wrap(model, f"{prompt} {text}" if steered else text)
                head_ids = tokenize(model, [head], special_tokens=not hp.chat_template)[0]
                if not output:
                    ids.append(head_ids)
                    spans.append((len(head_ids) - 1, len(head_ids)))
                    continue
                full = tokenize(model, [f"{head} {output}"], special_tokens=not hp.chat_template)
                ids.append(full[0])
                spans.append((min(len(head_ids), len(full[0]) - 1), len(full[0])))
        hooks = [names.hook(hp.hook, layer) for layer in hp.layers]
        acts = read_activations(model, ids, spans, hooks, hp.batch_size)
        n = len(records)
        return SteeringVector(
            {hook: (a[:n] - a[n:]).mean(0) for hook, a in acts.items()},
            method=self.name,
            model=ModelRecord.of(model),
            dataset=hp.dataset or "records",
            meta={"prompt": hp.prompt, "n_records": n, "hparams": hp.to_dict()},
        )

    def _wrap(self, model: HookedModel, text: str) -> str:
        hp = self.hparams
        if hp.chat_template:
            return apply_chat_template(model.tokenizer, [text], hp.system_prompt or None)[0]
        return f"{hp.system_prompt}\n\n{text}" if hp.system_prompt else text


def _record(item: Record, prompt: str) -> tuple[str, str, str]:
    """(prompt, input, output) of one record; a record without input is an error."""
    if isinstance(item, str):
        item = {"input": item}
    if not isinstance(item, Mapping):
        raise SteeringError(
            f"vector_prompt data must be inputs or {{input, output, prompt}} records, got "
            f"{type(item).__name__}."
        )
    text = str(item.get("input") or item.get("question") or "").strip()
    if not text:
        raise SteeringError(
            f"A vector_prompt record has no `input`: {dict(item)!r}; give the text to read."
        )
    return str(item.get("prompt") or prompt).strip(), text, str(item.get("output") or "").strip()
