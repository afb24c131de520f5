"""The ``interv`` command line: one module per command group, each with ``register``."""
