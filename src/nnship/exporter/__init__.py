"""nnship.exporter (see docs/architecture.md)."""
