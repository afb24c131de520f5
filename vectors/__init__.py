"""Ready-made steering vectors shipped with interv, each with its metadata."""
