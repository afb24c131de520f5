"""interv.sae: sparse autoencoders on canonical hook points (loading, training, features, STA).

Shipped in the repository as the top-level ``sae/`` folder and installed as ``interv.sae``.
sae-lens is imported only when an SAE is loaded or trained.

* ``load(name_or_folder, model=...)`` -> ``HookedSAE`` (loading.py, hooked.py)
* ``training.train(model, TrainConfig(...), out)`` (training.py; ``interv sae train``)
* ``features.feature_report`` / ``features.text_report`` (features.py, views.py;
  ``interv sae inspect``)
* ``steering``: STA feature selection and SAE-feature vectors (the ``sta`` and ``sae_feature``
  steering methods in ``interv.steer``)
"""

from __future__ import annotations

from ..errors import SAEError
from .hooked import HookedSAE
from .loading import canonical_hook, from_pretrained, load, load_from_disk, resolve, shipped

DEFAULT_SAE = "smollm2-135m-res12"

__all__ = [
    "DEFAULT_SAE",
    "HookedSAE",
    "SAEError",
    "canonical_hook",
    "from_pretrained",
    "load",
    "load_from_disk",
    "resolve",
    "shipped",
]
