"""Prompt formats shared by methods and metrics."""

from __future__ import annotations

from typing import Any


def chat_prefix(tokenizer: Any, user: str, system: str | None = None) -> str:
    """A user turn (after an optional system turn) and the opening of the assistant's turn."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _uses_chat(tokenizer: Any, chat_template: bool) -> bool:
    return bool(chat_template and getattr(tokenizer, "chat_template", None))


def _question(tokenizer: Any, question: str, chat: bool, system: str | None) -> str:
    """A question as a user turn with the assistant's turn opened, or followed by "Answer:"."""
    if chat:
        return chat_prefix(tokenizer, question, system)
    return f"{system}\n\n{question}\n\nAnswer:" if system else f"{question}\n\nAnswer:"


def ab_prompt(
    tokenizer: Any, question: str, chat_template: bool = True, system: str | None = None
) -> str:
    """CAA's multiple-choice format: the question, then the answer opened by "(".

    The next token is the answer letter, where CAA reads (and we score) the behaviour.
    """
    chat = _uses_chat(tokenizer, chat_template)
    return _question(tokenizer, question, chat, system) + ("(" if chat else " (")


def ab_answer_ids(
    tokenizer: Any, item: Any, chat_template: bool = True, system: str | None = None
) -> tuple[list[int], dict[str, list[int]]]:
    """The cloze form of an A/B item (an ``ABItem``) as token ids: the question without its
    choices (as a user turn, or followed by "Answer:"), then each choice's text by letter.

    The answer follows the opened assistant turn directly, or "Answer:" after a space.
    """
    stem, texts = item.options()
    chat = _uses_chat(tokenizer, chat_template)
    prompt = _question(tokenizer, stem, chat, system)
    ids = tokenizer(prompt, add_special_tokens=not chat)["input_ids"]
    space = "" if chat else " "
    return ids, {
        letter: tokenizer(space + text, add_special_tokens=False)["input_ids"]
        for letter, text in texts.items()
    }
