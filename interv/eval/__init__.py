"""Evaluation: editing metrics (reliability, generalization, locality, portability, fluency) and
steering metrics."""
