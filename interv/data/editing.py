"""Edit requests from the shared knowledge-editing benchmarks (EasyEdit formats)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..edit.base import EditRequest
from .paths import data_file

COUNTERFACT = "knowledge_editing/counterfact/easyedit_counterfact-val.json"
ZSRE = "knowledge_editing/zsre/zsre_mend_eval_portability_gpt4.json"


def request_from_record(record: dict[str, Any]) -> EditRequest:
    """An EasyEdit-style record (the `interv edit --requests` format) as an EditRequest.

    Fields: prompt, subject, target_new, ground_truth, optional rephrase_prompt (str or list),
    locality_prompt + locality_ground_truth, and portability ({name: [{prompt, ground_truth}]}
    or {name: {prompt, ground_truth}}).
    """
    rephrase = record.get("rephrase_prompt") or []
    locality = {}
    if record.get("locality_prompt"):
        locality["neighborhood"] = [(record["locality_prompt"], _first(record["locality_ground_truth"]))]
    portability = {
        name: [(item["prompt"], _first(item["ground_truth"])) for item in _as_list(items)]
        for name, items in (record.get("portability") or {}).items()
    }
    return EditRequest(
        prompt=record["prompt"],
        target_new=_first(record["target_new"]),
        subject=record.get("subject"),
        ground_truth=_first(record["ground_truth"]) if record.get("ground_truth") else None,
        rephrase_prompts=[rephrase] if isinstance(rephrase, str) else list(rephrase),
        locality=locality,
        portability=portability,
        case_id=record.get("case_id"),
    )


def load_requests(path: str | Path) -> list[EditRequest]:
    records = json.loads(Path(path).read_text())
    if not isinstance(records, list):
        raise ValueError(f"{path} must hold a JSON list of edit records.")
    return [request_from_record(r) for r in records]


def counterfact(n: int | None = None, start: int = 0) -> list[EditRequest]:
    """CounterFact in EasyEdit's flattened format (1919 records)."""
    records = json.loads(data_file(COUNTERFACT).read_text())
    return [request_from_record(r) for r in records[start : None if n is None else start + n]]


def zsre(n: int | None = None, start: int = 0) -> list[EditRequest]:
    """ZsRE with portability questions (EasyEdit's "one hop" file, 1037 records)."""
    records = json.loads(data_file(ZSRE).read_text())[start : None if n is None else start + n]
    out = []
    for r in records:
        port = r.get("portability") or {}
        out.append(
            EditRequest(
                prompt=r["src"],
                target_new=r["alt"],
                subject=r["subject"] if r["subject"] in r["src"] else None,
                ground_truth=_first(r["answers"]),
                rephrase_prompts=[r["rephrase"]] if r.get("rephrase") else [],
                locality={"nq": [(r["loc"], r["loc_ans"])]} if r.get("loc") else {},
                portability={"one_hop": [(port["New Question"], port["New Answer"])]}
                if port.get("New Question")
                else {},
            )
        )
    return out


def _first(value: Any) -> str:
    while isinstance(value, list):
        value = value[0]
    return str(value)


def _as_list(items: Any) -> list[dict[str, Any]]:
    return items if isinstance(items, list) else [items]
