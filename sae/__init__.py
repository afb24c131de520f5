"""interv.sae: sparse autoencoders on canonical hook points (loading, training, features, STA).

Shipped in the repository as the top-level ``sae/`` folder and installed as ``interv.sae``.
"""
