"""Clients that rate a text from a prompt: a local chat model (``RatingScorer``: the expected
rating from its next-token probabilities) and an OpenAI-compatible chat-completion endpoint
(``ChatClient`` with ``parse_rating``). Nothing here knows what is rated: the steering rubric is
in ``interv.eval.judge``; editing evaluation can ask its own questions through the same clients.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

import torch
from jaxtyping import Float
from torch import Tensor

from ..adapters import HookedModel
from ..adapters.backends import Batch
from ..adapters.text import apply_chat_template
from ..errors import ConfigError, DataError, ProvisionError

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
BASE_URL_ENV = "INTERV_JUDGE_BASE_URL"
KEY_ENV = "OPENAI_API_KEY"
RATINGS = ("0", "1", "2")
_BRACKETED = re.compile(r"\[\[\s*(\d+)\s*\]\]")
_LABELLED = re.compile(r"rating\s*[:=]?\s*(\d+)(?![\d.]*\d)", re.IGNORECASE)
_INTEGER = re.compile(r"(?<![\d.])(\d+)(?![\d.]*\d)")
_RETRY_STATUS = {408, 409, 429, 500, 502, 503, 504}


class RatingScorer:
    """Rates prompts with a local chat model: each prompt is the user turn of the model's chat
    template and the rating is the expected value of the next token over ``choices`` (their
    probabilities renormalised), with no generation and no sampling.

    Example:
        >>> scorer = RatingScorer(model)  # doctest: +SKIP
        >>> scorer.expected(["Is 'the the the' fluent? Reply 0, 1 or 2."])  # doctest: +SKIP
        [0.41]
    """

    def __init__(
        self,
        model: HookedModel,
        choices: Sequence[str] = RATINGS,
        *,
        system_prompt: str | None = None,
        batch_size: int = 8,
    ):
        self.model, self.choices = model, tuple(choices)
        self.system_prompt, self.batch_size = system_prompt, batch_size
        tok = model.tokenizer
        self.ids = [tok(c, add_special_tokens=False)["input_ids"][-1] for c in self.choices]
        if len(set(self.ids)) != len(self.ids):
            raise ConfigError(f"The choices {self.choices} share a token in this tokenizer.")

    def _texts(self, prompts: Sequence[str]) -> list[str]:
        if getattr(self.model.tokenizer, "chat_template", None):
            return apply_chat_template(self.model.tokenizer, list(prompts), self.system_prompt)
        return [f"{p}\n" for p in prompts]  # a base model: the prompt, then the rating

    @torch.no_grad()
    def probabilities(self, prompts: Sequence[str]) -> Float[Tensor, "n choices"]:
        """P(each choice) as the next token after each prompt, renormalised over the choices."""
        out = []
        tok, model = self.model.tokenizer, self.model
        for start in range(0, len(prompts), self.batch_size):
            texts = self._texts(prompts[start : start + self.batch_size])
            templated = bool(getattr(tok, "chat_template", None))
            enc = tok(
                texts,
                return_tensors="pt",
                padding=True,
                padding_side="left",
                add_special_tokens=not templated,
            )
            batch = Batch(enc["input_ids"].to(model.device), enc["attention_mask"].to(model.device))
            last = model.forward(batch)[:, -1].float()
            out.append(last[:, self.ids].softmax(-1).cpu())
        return torch.cat(out) if out else torch.zeros(0, len(self.choices))

    def expected(self, prompts: Sequence[str]) -> list[float]:
        """The expected rating per prompt (choices read as numbers: "0", "1", "2" -> 0..2)."""
        values = torch.tensor([float(c) for c in self.choices])
        return (self.probabilities(prompts) @ values).tolist()


def parse_rating(text: str, allowed: Sequence[int] = (0, 1, 2)) -> int:
    """The rating in a judge's reply: the last ``[[X]]``, else the last "Rating: X", else the
    last whole number.

    Example:
        >>> parse_rating("Clear and on topic. Rating: [[2]]")
        2
        >>> parse_rating("I would give it a 1.")
        1
    """
    found = _BRACKETED.findall(text) or _LABELLED.findall(text) or _INTEGER.findall(text)
    if not found or int(found[-1]) not in allowed:
        raise DataError(
            f"The judge's reply has no rating in {list(allowed)}: {text[-200:]!r}. Its prompt "
            "asks for 'Rating: [[X]]'; a model that ignores that cannot be parsed."
        )
    return int(found[-1])


class ChatClient:
    """A minimal OpenAI-compatible ``/chat/completions`` client (urllib; no SDK needed)."""

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 2.0,
    ):
        self.model, self.api_key, self.base_url = model, api_key, base_url.rstrip("/")
        self.timeout, self.retries, self.backoff = timeout, retries, backoff

    @classmethod
    def from_env(cls, model: str) -> ChatClient:
        """The key from ``$OPENAI_API_KEY``, the endpoint from ``$INTERV_JUDGE_BASE_URL``."""
        key = os.environ.get(KEY_ENV)
        if not key:
            raise ConfigError(
                f"The OpenAI judge needs an API key: set {KEY_ENV} (and {BASE_URL_ENV} for "
                f"another OpenAI-compatible endpoint than {DEFAULT_BASE_URL})."
            )
        return cls(model, api_key=key, base_url=os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL)

    def complete(
        self, messages: Sequence[dict[str, str]], *, temperature: float = 0.0, max_tokens: int = 256
    ) -> str:
        """The first choice's message content for ``messages``; transient HTTP failures (rate
        limits, server errors, timeouts) are retried ``retries`` times with a logged warning."""
        body = {
            "model": self.model,
            "messages": list(messages),
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        reply = self._post(json.dumps(body).encode())
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise DataError(f"Not a chat-completion reply: {str(reply)[:300]}") from None
        if not isinstance(content, str):
            raise DataError(f"The chat-completion reply has no text content: {str(reply)[:300]}")
        return content

    def _post(self, data: bytes) -> Any:
        url = f"{self.base_url}/chat/completions"
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                if err.code not in _RETRY_STATUS or attempt == self.retries:
                    detail = err.read().decode("utf-8", "replace")[:300]
                    raise ProvisionError(f"{url} answered HTTP {err.code}: {detail}") from None
                problem = f"HTTP {err.code}"
            except (urllib.error.URLError, TimeoutError) as err:
                if attempt == self.retries:
                    raise ProvisionError(f"Could not reach the judge at {url}: {err}") from None
                problem = str(err)
            except json.JSONDecodeError as err:
                raise DataError(f"{url} did not answer with JSON ({err}).") from None
            attempt += 1
            log.warning("Judge request failed (%s); retry %d of %d", problem, attempt, self.retries)
            time.sleep(self.backoff * 2 ** (attempt - 1))

    def rate(
        self,
        prompt: str,
        *,
        system_prompt: str | None = None,
        allowed: Sequence[int] = (0, 1, 2),
        attempts: int = 2,
    ) -> int:
        """Ask ``prompt`` and parse its rating; a reply without one is asked again (logged)
        up to ``attempts`` times in all, then a ``DataError``."""
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": prompt})
        for _ in range(attempts - 1):
            reply = self.complete(messages)
            try:
                return parse_rating(reply, allowed)
            except DataError:
                log.warning("The judge's reply had no rating; asking again: %r", reply[-120:])
        return parse_rating(self.complete(messages), allowed)
