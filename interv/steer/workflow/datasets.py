"""Dataset names of the steering workflow, mapped to the shared data (``interv.data.steering``).

Training sets (``steer_train_dataset``) give what a method's ``data_kind`` asks for:

* contrastive: ``sentiment_positive`` (alias ``sentiment``; ConvSent positive vs negative
  opinions), ``sentiment_negative`` (the same pairs the other way round), and the seven CAA
  behaviours as A/B items (``refusal``, ``sycophancy``, ``hallucination``, ``corrigibility``,
  ``survival_instinct``, ``myopic_reward``, ``coordinate_other_ais``; the CAA folder names
  such as ``corrigible-neutral-HHH`` work too);
* labelled text: ``sst2_label`` (SST-2 validation), ``sentiment_label`` (ConvSent sentences);
  contrastive free-form pairs also serve as labelled text (positive 1, negative 0);
* prompts: any generation set below (its inputs).

Generation sets (``generation_data``) give records ``{input, reference_response}``:
``sentiment_neutral`` / ``sentiment_positive`` / ``sentiment_negative`` (DExperts prompts),
``<behaviour>_test`` (the held-out CAA A/B sets; records also carry ``matching`` and
``not_matching``, and the applier scores the A/B probability), ``<behaviour>_open_ended``,
``realtoxicityprompts`` (alias ``toxicity``). A path to a JSON / JSONL file of records with
EasyEdit2's field names (``question``/``matching``/``not_matching``, ``text``/``label``,
``input``/``reference_response``) is accepted for both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...data import steering as data
from ...data.steering import ABItem, ContrastPair
from ...errors import DataError
from ...files import read_json, read_jsonl

BEHAVIOURS = {
    "refusal": "refusal",
    "sycophancy": "sycophancy",
    "hallucination": "hallucination",
    "corrigibility": "corrigible-neutral-HHH",
    "survival_instinct": "survival-instinct",
    "myopic_reward": "myopic-reward",
    "coordinate_other_ais": "coordinate-other-ais",
}


def _behaviour(name: str) -> str | None:
    if name in BEHAVIOURS:
        return BEHAVIOURS[name]
    return name if name in data.CAA_BEHAVIOURS else None


def _sentiment_labelled(n: int | None) -> list[tuple[str, int]]:
    pairs = data.convsent_pairs(n)
    return [(p.positive, 1) for p in pairs] + [(p.negative, 0) for p in pairs]


def _contrast(name: str, n: int | None) -> list[ABItem] | list[ContrastPair] | None:
    if name in ("sentiment", "sentiment_positive"):
        return data.convsent_pairs(n)
    if name == "sentiment_negative":
        return [ContrastPair(p.negative, p.positive, p.prompt) for p in data.convsent_pairs(n)]
    behaviour = _behaviour(name)
    return data.caa_ab(behaviour, "generate", n) if behaviour else None


def _records(name: str, n: int | None) -> list[dict[str, Any]] | None:
    if name.startswith("sentiment_") and name.split("_", 1)[1] in (
        "neutral",
        "positive",
        "negative",
    ):
        return [
            {"input": p, "reference_response": ""}
            for p in data.sentiment_prompts(name.split("_", 1)[1], n)
        ]
    if name in ("realtoxicityprompts", "toxicity"):
        prompts = data.toxic_prompts()
        return [{"input": p, "reference_response": ""} for p in (prompts[:n] if n else prompts)]
    behaviour = _behaviour(name.removesuffix("_test")) if name.endswith("_test") else None
    if behaviour:
        return [
            {
                "input": i.question,
                "reference_response": i.matching,
                "matching": i.matching,
                "not_matching": i.not_matching,
            }
            for i in data.caa_ab(behaviour, "test", n)
        ]
    behaviour = (
        _behaviour(name.removesuffix("_open_ended")) if name.endswith("_open_ended") else None
    )
    if behaviour:
        return [{"input": q, "reference_response": ""} for q in data.caa_open_ended(behaviour, n)]
    return None


def _read_file(path: Path) -> list[dict[str, Any]]:
    kind = "steering data file"
    rows = read_jsonl(path, kind) if path.suffix == ".jsonl" else read_json(path, kind)
    if not isinstance(rows, list):
        raise DataError(f"{path} must hold a list of records, not {type(rows).__name__}.")
    return rows


def known_names() -> list[str]:
    behaviours = list(BEHAVIOURS)
    return (
        ["sentiment_positive", "sentiment_negative", "sst2_label", "sentiment_label"]
        + behaviours
        + ["sentiment_neutral", "realtoxicityprompts"]
        + [f"{b}_test" for b in behaviours]
        + [f"{b}_open_ended" for b in behaviours]
    )


def _unknown(name: str) -> DataError:
    return DataError(
        f"Unknown dataset {name!r}; use a file of records or one of: {', '.join(known_names())}."
    )


def train_data(name: str, kind: str | None, n: int | None = None) -> list[Any]:
    """The training data a method of ``kind`` needs, from a dataset name or file."""
    if Path(name).suffix in (".json", ".jsonl") and Path(name).is_file():
        return from_records(_read_file(Path(name))[:n] if n else _read_file(Path(name)), kind, name)
    if kind == "labelled":
        if name in ("sst2", "sst2_label"):
            return data.sst2(n)
        if name in ("sentiment_label", "convsent_label"):
            return _sentiment_labelled(n)
        pairs = _contrast(name, n)
        if pairs and isinstance(pairs[0], ContrastPair):
            return [(p.positive, 1) for p in pairs] + [(p.negative, 0) for p in pairs]  # type: ignore[union-attr]
    elif kind in ("prompts", "records"):
        records = _records(name, n)
        if records is not None:
            return [r["input"] for r in records] if kind == "prompts" else records
    elif kind == "contrast":
        pairs = _contrast(name, n)
        if pairs is not None:
            return pairs
    if name in ("toxicity", "realtoxicityprompts") and kind != "prompts":
        raise DataError(
            f"interv ships {name!r} as generation prompts only: EasyEdit2's toxicity training "
            "set is not published with a source. Train on a .json file of {question, matching, "
            "not_matching} records (matching: the non-toxic reply), see docs/steering.md, "
            "'Training records'."
        )
    if _contrast(name, 1) is not None or _records(name, 1) is not None or name.startswith("sst2"):
        raise DataError(f"Dataset {name!r} does not hold {kind} data, which this method needs.")
    raise _unknown(name)


def train_records(name: str, n: int | None = None) -> list[dict[str, Any]]:
    """EasyEdit2's training records of a dataset name or file (``prepare_train_dataset``):
    ``{question, matching, not_matching}`` for contrast sets, ``{text, label}`` for labelled
    text, ``{input}`` for prompts; a file's records as they are."""
    if Path(name).suffix in (".json", ".jsonl") and Path(name).is_file():
        rows = _read_file(Path(name))
        return rows[:n] if n else rows
    pairs = _contrast(name, n)
    if pairs is not None:
        return [
            {"question": p.question, "matching": p.matching, "not_matching": p.not_matching}
            if isinstance(p, ABItem)
            else {"question": p.prompt, "matching": p.positive, "not_matching": p.negative}
            for p in pairs
        ]
    if name in ("sst2", "sst2_label", "sentiment_label", "convsent_label"):
        labelled = data.sst2(n) if name.startswith("sst2") else _sentiment_labelled(n)
        return [{"text": text, "label": label} for text, label in labelled]
    records = _records(name, n)
    if records is None:
        raise _unknown(name)
    return records


def from_records(rows: list[dict[str, Any]], kind: str | None, name: str) -> list[Any]:
    """The data a method of ``kind`` takes, from EasyEdit2's training records."""
    if kind == "labelled" and rows and "label" in rows[0]:
        return [(r["text"], int(r["label"])) for r in rows]
    if kind == "labelled" and rows and "matching" in rows[0]:
        return [(r["matching"], 1) for r in rows] + [(r["not_matching"], 0) for r in rows]
    if kind == "prompts" and rows and ("input" in rows[0] or "question" in rows[0]):
        return [r.get("input") or r["question"] for r in rows]
    if kind == "records" and rows and ("input" in rows[0] or "question" in rows[0]):
        return rows
    if kind == "contrast" and rows and "matching" in rows[0]:
        letters = {str(r["matching"]).strip(" ()") for r in rows}
        if letters <= {"A", "B"} and all(r.get("question") for r in rows):
            return [
                ABItem(r["question"], r["matching"].strip(), r["not_matching"].strip())
                for r in rows
            ]
        return [ContrastPair(r["matching"], r["not_matching"], r.get("question", "")) for r in rows]
    raise DataError(
        f"{name}: records lack the fields {kind} data needs: {{question, matching, "
        "not_matching}} for contrast methods (CAA...), {text, label} for labelled text "
        "(LM-Steer), {input} for prompts (see docs/steering.md, 'Training records')."
    )


def generation_records(name: str, n: int | None = None) -> list[dict[str, Any]]:
    """Records ``{input, reference_response, ...}`` of a generation dataset name or file."""
    if Path(name).suffix in (".json", ".jsonl") and Path(name).is_file():
        rows = _read_file(Path(name))
        out = [
            {
                "input": r.get("input") or r.get("question") or r.get("prompt"),
                "reference_response": r.get("reference_response", ""),
                **r,
            }
            for r in rows
        ]
        return out[:n] if n else out
    records = _records(name, n)
    if records is None:
        raise _unknown(name)
    return records


def dataset_label(name: str) -> str:
    """The folder / file-name part for a dataset: its name, or a data file's stem."""
    path = Path(name)
    return path.stem if path.suffix in (".json", ".jsonl") else name
