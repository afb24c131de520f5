"""YAML recipes shipped with interv (read with importlib.resources)."""
