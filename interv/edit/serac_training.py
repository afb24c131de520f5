"""Training SERAC for a model (``interv train serac``): the scope classifier on edit records,
the counterfactual's context chosen on validation records.

The classifier learns from each training record's prompt (the key) and the texts that are
about it: the prompt and its rephrasings, each with and without the answer (teacher-forced
rows carry the answer) and wrapped in the model's chat template when it has one. Texts out
of scope are the records' locality probes and, as in-batch negatives, the texts of the other
records of the step. The loss is binary cross-entropy on every (text, key) pair of a step.
After training, the threshold that best separates the validation records' own texts from
their locality probes and each other is kept.

The counterfactual context is chosen among ``TEMPLATES``, with and without demonstrations
(training records written in the template, each followed by a rephrasing and its answer), by
teacher-forced accuracy of the validation records' prompts and rephrasings with the context
before them.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from jaxtyping import Bool, Float
from torch import Tensor

from ..adapters import HookedModel
from ..errors import ConfigError
from ..eval.tokens import token_accuracy
from ..files import provenance
from ..record import ModelRecord
from ..requests import EditRequest
from .serac import ScopeClassifier, SERACArchive, SERACHParams, embed

TEMPLATES = (
    "New fact: {prompt} {target}\n\n",
    "New fact: {prompt} {target}\n\nAccording to the new fact: ",
)


@dataclass
class Texts:
    """The texts of some records: per record, its key, in-scope texts and out-of-scope ones."""

    keys: list[str]
    inside: list[list[str]]
    outside: list[list[str]]
    facts: list[str]  # records about the same subject are in each other's scope


def texts_of(model: HookedModel, records: Sequence[EditRequest]) -> Texts:
    """What the classifier is trained and validated on (see the module docstring)."""
    if not records:
        raise ConfigError("SERAC training needs edit records; none were given.")
    chat = bool(getattr(model.tokenizer, "chat_template", None))
    keys, inside, outside, facts = [], [], [], []
    for r in records:
        questions = [r.prompt, *r.rephrase_prompts]
        mine = questions + [f"{q} {r.target_new}" for q in questions]
        probes = [p for pairs in r.locality.values() for p in pairs]
        other = [p for p, _ in probes] + [f"{p} {a}" for p, a in probes]
        if chat:
            mine += [_chat_text(model, q) for q in questions[-1:]]
            other += [_chat_text(model, p) for p, _ in probes[:1]]
        keys.append(r.prompt)
        facts.append((r.subject or r.prompt).strip().lower())
        inside.append(mine)
        outside.append(other)
    if not any(outside):
        raise ConfigError(
            "SERAC training needs locality probes (prompt, answer) in the records, e.g. ZsRE's "
            "`loc`/`loc_ans`, as examples of inputs out of scope; none of the records has one."
        )
    return Texts(keys, inside, outside, facts)


def _chat_text(model: HookedModel, text: str) -> str:
    """``text`` as a routed row of a chat-templated generation reads (markup left out)."""
    wrapped = model.tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    ids = model.tokenizer(wrapped, add_special_tokens=False)["input_ids"]
    return model.tokenizer.decode(ids, skip_special_tokens=True)


class Embedded:
    """Texts embedded once: each record's key, in-scope and out-of-scope rows of one matrix."""

    def __init__(self, texts: Texts):
        unique = list(dict.fromkeys(texts.keys + _flat(texts.inside) + _flat(texts.outside)))
        where = {t: i for i, t in enumerate(unique)}
        self.vectors = embed(unique)
        self.keys = torch.tensor([where[k] for k in texts.keys])
        self.inside = [_index(where, ts) for ts in texts.inside]
        self.outside = [_index(where, ts) for ts in texts.outside]
        self.facts = texts.facts

    def same_fact(self, records: Sequence[int]) -> Bool[Tensor, "n n"]:
        """``[i, j]``: records ``i`` and ``j`` are about the same subject."""
        facts = [self.facts[i] for i in records]
        return torch.tensor([[a == b for b in facts] for a in facts])

    def batch(
        self, records: Sequence[int]
    ) -> tuple[
        Float[Tensor, "q 384"], Float[Tensor, "k 384"], Float[Tensor, "q k"], Float[Tensor, "q k"]
    ]:
        """Query vectors, key vectors, 0/1 labels and 0/1 weights (query × key) for some
        records; a text is not scored against another record about the same subject."""
        same = self.same_fact(records)
        rows, labels, weights = [], [], []
        for column, i in enumerate(records):
            for index, owner in ((self.inside[i], column), (self.outside[i], -1)):
                rows.append(index)
                label = torch.zeros(len(index), len(records))
                weight = torch.ones(len(index), len(records))
                if owner >= 0:
                    weight[:, same[column]] = 0.0
                    label[:, owner], weight[:, owner] = 1.0, 1.0
                labels.append(label)
                weights.append(weight)
        queries = self.vectors[torch.cat(rows)]
        keys = self.vectors[self.keys[list(records)]]
        return queries, keys, torch.cat(labels), torch.cat(weights)


def _index(where: dict[str, int], texts: list[str]) -> Tensor:
    return torch.tensor([where[t] for t in texts], dtype=torch.long)


def _flat(nested: list[list[str]]) -> list[str]:
    return [t for ts in nested for t in ts]


def train_classifier(
    data: Embedded, hp: SERACHParams, progress: bool = True
) -> tuple[ScopeClassifier, list[float]]:
    """The scope classifier after ``hp.max_iters`` steps of ``hp.batch_size`` records."""
    from tqdm.auto import tqdm

    torch.manual_seed(hp.seed)
    rng = random.Random(hp.seed)
    classifier = ScopeClassifier(hp.dim)
    optimiser = torch.optim.Adam(classifier.parameters(), lr=hp.lr)
    n = len(data.keys)
    losses = []
    bar = tqdm(range(hp.max_iters), desc="serac scope", disable=not progress)
    for _ in bar:
        queries, keys, labels, weights = data.batch(rng.sample(range(n), min(hp.batch_size, n)))
        logits = classifier(queries, keys)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels, weights, pos_weight=torch.tensor(float(len(keys)) ** 0.5)
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    return classifier.eval(), losses


@torch.no_grad()
def scope_scores(
    classifier: ScopeClassifier, data: Embedded
) -> tuple[Float[Tensor, " inside"], Float[Tensor, " outside"]]:
    """Probabilities of the records' own texts against their own key (in scope), and of every
    out-of-scope text, and every text of a record about another subject, against the best
    key."""
    logits = classifier(data.vectors, data.vectors[data.keys]).sigmoid()
    inside = torch.cat([logits[index, i] for i, index in enumerate(data.inside)])
    same = data.same_fact(range(len(data.keys)))
    others = []
    for i in range(len(data.keys)):
        if not bool(same[i].all()):
            others.append(logits[data.inside[i]][:, ~same[i]].max(-1).values)
        others.append(logits[data.outside[i]].max(-1).values)
    return inside, torch.cat(others)


def choose_threshold(
    inside: Float[Tensor, " inside"], outside: Float[Tensor, " outside"]
) -> tuple[float, dict[str, float]]:
    """The threshold with the best balanced accuracy (the middle one of a tie), and the rates
    it gives."""
    grid = [i / 100 for i in range(5, 96)]
    scores = [float((inside > t).float().mean() + (outside <= t).float().mean()) for t in grid]
    tied = [t for t, score in zip(grid, scores, strict=True) if score == max(scores)]
    best = tied[len(tied) // 2]
    rates = {
        "threshold": best,
        "in_scope_recall": round(float((inside > best).float().mean()), 4),
        "out_of_scope_rejected": round(float((outside <= best).float().mean()), 4),
    }
    return best, rates


def demos_of(records: Sequence[EditRequest], template: str, n: int) -> str:
    """``n`` training records (with a rephrasing) written in ``template``, each followed by a
    rephrasing and its answer."""
    with_rephrase = [r for r in records if r.rephrase_prompts][:n]
    return "".join(
        template.format(prompt=r.prompt, target=r.target_new)
        + f"{r.rephrase_prompts[0]} {r.target_new}\n\n"
        for r in with_rephrase
    )


def choose_context(
    model: HookedModel, train: Sequence[EditRequest], val: Sequence[EditRequest], hp: SERACHParams
) -> tuple[str, str, list[dict[str, Any]]]:
    """The template and demonstrations with the best teacher-forced accuracy on ``val``."""
    table = []
    for template in TEMPLATES:
        for n in sorted({0, hp.n_demos}):
            demos = demos_of(train, template, n)
            prompts, answers = [], []
            for r in val:
                context = demos + template.format(prompt=r.prompt, target=r.target_new)
                for question in [r.prompt, *r.rephrase_prompts[:1]]:
                    prompts.append(context + question)
                    answers.append(r.target_new)
            accuracy = statistics.fmean(token_accuracy(model, prompts, answers))
            table.append({"template": template, "demos": n, "accuracy": round(accuracy, 4)})
    best = max(table, key=lambda row: row["accuracy"])
    return best["template"], demos_of(train, best["template"], best["demos"]), table


def train(
    model: HookedModel,
    train_data: Sequence[EditRequest],
    val_data: Sequence[EditRequest],
    hp: SERACHParams,
    out: str | Path,
    *,
    data_meta: dict[str, Any] | None = None,
    progress: bool = True,
) -> tuple[Path, dict[str, Any]]:
    """Train a SERAC archive for ``model``; saves ``out/serac.safetensors``."""
    start = time.perf_counter()
    train_texts, val_texts = texts_of(model, train_data), texts_of(model, val_data)
    classifier, losses = train_classifier(Embedded(train_texts), hp, progress)
    threshold, rates = choose_threshold(*scope_scores(classifier, Embedded(val_texts)))
    val = list(val_data)[: hp.val_steps]
    template, demos, table = choose_context(model, train_data, val, hp)
    meta = {
        "trained": {
            "seconds": round(time.perf_counter() - start, 1),
            "steps": hp.max_iters,
            "final_loss": round(statistics.fmean(losses[-20:]), 5),
            "records": len(train_data),
            "val_records": len(val_data),
            "data": data_meta or {},
            "scope": rates,
            "counterfactual": table,
            **provenance(),
        },
        "hparams": hp.to_dict(),
    }
    archive = SERACArchive(classifier, template, demos, threshold, ModelRecord.of(model), meta)
    path = archive.save(Path(out) / "serac.safetensors")
    return path, meta
