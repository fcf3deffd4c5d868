"""nnship.validate (see docs/architecture.md)."""
