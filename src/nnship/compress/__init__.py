"""nnship.compress (see docs/architecture.md)."""
