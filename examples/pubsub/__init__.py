"""A pub/sub server whose publish and subscribe sides are separate ports: docs/custom-target.md, example 3."""
