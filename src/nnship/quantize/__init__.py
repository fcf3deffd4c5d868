"""nnship.quantize (see docs/architecture.md)."""
