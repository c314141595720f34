"""A line-based TCP message broker (not HTTP) with its own driver: docs/custom-target.md, example 2."""
