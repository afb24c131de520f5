"""Knowledge editing: methods that turn edit requests into weight patches.

Every method lives in one file of this package, declares its hyperparameters and registers
itself with ``@EDIT_METHODS.register("<id>")``; ``EDIT_METHODS.get("rome")`` finds it.
"""

from .base import EDIT_METHODS, EditMethod, EditRequest, RequestError

__all__ = ["EDIT_METHODS", "EditMethod", "EditRequest", "RequestError"]
