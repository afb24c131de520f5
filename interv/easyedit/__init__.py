"""EasyEdit-compatible API: keep your EasyEdit scripts, run them on interv.

    from interv.easyedit import BaseEditor, ROMEHyperParams

    hparams = ROMEHyperParams.from_hparams("hparams/ROME/llama3.2-3b.yaml")  # EasyEdit's file
    hparams.model_name = "SmolLM2-135M-Instruct"  # the only change
    editor = BaseEditor.from_hparams(hparams)
    metrics, edited_model, weights_copy = editor.edit(prompts=..., ground_truth=...,
                                                      target_new=..., subject=...)

``<Method>HyperParams`` classes are generated from interv's registry of edit methods
(``FTHyperParams`` covers FT-L and FT-M; ``ROMEHyperParams``, ``MEMITHyperParams``,
``AlphaEditHyperParams``, ``EMMETHyperParams``... exist once those methods are registered).
``HyperParams.from_hparams`` loads any method's file by its ``alg_name``. Metrics are
EasyEdit's per-request dicts (``interv.eval.editing``); see ``interv.easyedit.editor`` for
what ``edit`` does to the model — unlike EasyEdit, the returned model carries the edits.
"""

from __future__ import annotations

from typing import Any

from ..errors import MissingAttributeError
from .editor import BaseEditor
from .hparams import HyperParams, available_classes, hparams_class, registry_id
from .requests import prepare_requests

__all__ = ["BaseEditor", "HyperParams", "prepare_requests", "registry_id"]


def __getattr__(name: str) -> Any:
    if name.endswith("HyperParams"):
        return hparams_class(name)  # ImportError naming the available classes if unknown
    raise MissingAttributeError(f"module 'interv.easyedit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *available_classes()])
