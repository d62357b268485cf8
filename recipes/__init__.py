"""Recipes, each runnable as `python -m recipes.NAME`: char_lm (character language model), parity (even number of 1s, any length)."""
