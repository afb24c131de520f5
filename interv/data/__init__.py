"""Datasets: loaders for the benchmark files interv reads and the small subsets it ships."""
