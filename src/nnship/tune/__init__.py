"""nnship.tune (see docs/architecture.md)."""
