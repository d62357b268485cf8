"""Recipes, each runnable as `python -m recipes.NAME`: parity (count the 1s of a bit string of any length)."""
