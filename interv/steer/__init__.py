"""Steering methods: turn contrastive data into intervention graphs (one file per method)."""
