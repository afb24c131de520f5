"""Analysis tools that locate behaviour in a model (causal tracing)."""
