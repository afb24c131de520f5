"""The one error type of interv.sae: bad SAE files, SAEs that do not fit a model, bad indices."""

from __future__ import annotations


class SAEError(ValueError):
    """An SAE that cannot be used as asked; the message names the problem and the fix."""
