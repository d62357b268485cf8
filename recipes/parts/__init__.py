"""Pieces only one recipe needs (its custom layers, its report), kept beside it so the recipe reads top to bottom."""
