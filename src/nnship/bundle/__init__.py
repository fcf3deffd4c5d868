"""nnship.bundle (see docs/architecture.md)."""
