"""ONNX graph helpers every stage shares: loading with clear errors, specs, atomic saving,
intermediate outputs, subnormal flushing. Imports only the core."""
