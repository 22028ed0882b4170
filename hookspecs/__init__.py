"""Hookspec modules shipped as example contracts, each with its generated ``.wit`` beside it."""
