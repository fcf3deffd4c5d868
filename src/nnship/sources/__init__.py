"""Model sources and data sources (see docs/architecture.md)."""

from nnship.sources.arrays import ArrayData

__all__ = ["ArrayData"]
