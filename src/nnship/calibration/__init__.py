"""nnship.calibration (see docs/architecture.md)."""
