"""Photometry of single targets."""
