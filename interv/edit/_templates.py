"""Context templates: short random prefixes that make an edit robust to context.

ROME and MEMIT average keys (and optimise values) over the edit prompt preceded by a few random
prefixes ("The first thing I noticed. {}"). ROME has the model write them, which costs several
sampled generations; interv by default cuts them from the shipped corpus instead (the first
``length`` tokens of seeded random documents), which needs no model call and is just as varied.
``source="model"`` generates them as ROME does and caches them as JSON under
``$INTERV_HOME/templates``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from collections.abc import Sequence
from pathlib import Path

from ..adapters import HookedModel
from ..data.corpus import load_corpus
from ..errors import ConfigError
from ..files import write_json
from ..paths import interv_home

log = logging.getLogger(__name__)

STARTS = ("The", "Therefore", "Because", "I", "You")


def _clean(text: str) -> str:
    text = " ".join(text.replace("{", " ").replace("}", " ").split())
    return text.rstrip(". ")


SOURCES = ("corpus", "model")


def context_templates(
    model: HookedModel,
    length_params: Sequence[Sequence[int]],
    *,
    source: str = "corpus",
    seed: int = 0,
    cache_dir: Path | None = None,
) -> list[str]:
    """``["{}"]`` followed by ``n`` ``"<prefix>. {}"`` templates per ``[length, n]``.

    ``length`` counts tokens, including the start word (EasyEdit's ``max_out_len``).
    """
    params = [[int(length), int(n)] for length, n in length_params]
    for length, n in params:
        if length < 1 or n < 0:
            raise ConfigError(
                f"context_template_length_params entries must be [length>=1, n>=0], got {params}."
            )
    if source not in SOURCES:
        raise ConfigError(f"context template source must be one of {SOURCES}, got {source!r}.")
    if sum(n for _, n in params) == 0:
        return ["{}"]
    if source == "corpus":
        return _from_corpus(model, params, seed)
    return _generated(model, params, seed, cache_dir)


def _from_corpus(model: HookedModel, params: list[list[int]], seed: int) -> list[str]:
    docs = [d for d in load_corpus().documents() if len(d) > 40 and "\n" not in d]
    rng = random.Random(seed)
    templates = ["{}"]
    for length, n in params:
        for doc in rng.sample(docs, n):
            ids = model.tokenizer(doc, add_special_tokens=False)["input_ids"][:length]
            templates.append(f"{_clean(model.tokenizer.decode(ids))}. {{}}")
    return templates


def _generated(
    model: HookedModel, params: list[list[int]], seed: int, cache_dir: Path | None
) -> list[str]:
    key = hashlib.sha256(json.dumps([model.fingerprint(), params, seed]).encode()).hexdigest()[:16]
    path = (cache_dir or interv_home() / "templates") / f"{key}.json"
    if path.is_file():
        try:
            cached = json.loads(path.read_text())
            if isinstance(cached, list) and all(isinstance(t, str) for t in cached):
                return cached
        except (ValueError, UnicodeDecodeError):
            pass  # a damaged cache entry: generated again below
        log.warning("Ignoring unreadable context templates %s; generating them again.", path)
    templates = ["{}"]
    for length, n in params:
        starts = [STARTS[i % len(STARTS)] for i in range(n)]
        texts = model.generate(
            starts, max_new_tokens=max(length - 1, 1), do_sample=True, top_k=5, seed=seed + length
        )
        templates += [
            f"{_clean(start + text) or start}. {{}}"
            for start, text in zip(starts, texts, strict=True)
        ]
    write_json(path, templates, indent=1)
    log.info("context templates for %s: %s", model.cfg.name, templates)
    return templates


def subject_slots(n_templates: int, n_prompts: int) -> list[int | None]:
    """For each context template, the subject prompt that takes the edit prompt's place in the
    value optimisation (an index into ``subject_prompts``, taken in turn), or None: the edit
    prompt itself. The bare template (the first) and the one after it keep the edit prompt;
    every template after those holds a subject prompt."""
    return [None if i < 2 or not n_prompts else (i - 2) % n_prompts for i in range(n_templates)]


def check_subject_prompts(prompts: Sequence[str]) -> None:
    """Each subject prompt holds the subject's place once, as ``{}``, and some text besides."""
    for prompt in prompts:
        words = isinstance(prompt, str) and prompt.replace("{}", "").strip()
        if not words or prompt.count("{}") != 1:
            raise ConfigError(
                "subject_prompts must be texts with one '{}' where the subject goes "
                "and some words besides (e.g. '{} is associated with'); "
                f"got {prompt!r}."
            )


def fill(template: str, prompt: str) -> str:
    """Put ``prompt`` into a template's ``{}`` (prompts may themselves contain braces)."""
    head, _, tail = template.partition("{}")
    return head + prompt + tail
