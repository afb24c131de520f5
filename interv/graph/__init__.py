"""Intervention graphs: typed nodes at hook points, composed, saved and compiled to hooks."""
