"""Measurements of a model's outputs and speed: drift against a reference (the one cosine and
SQNR), classification agreement, latency and memory, tensor matching between two graphs.
Imports only the core and the ONNX helpers; stages and the validator use it."""
