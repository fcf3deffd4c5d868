"""nnship: a deployment-focused model compiler.

Compress (prune, distill) -> export to ONNX -> calibrate and quantize -> lower to ONNX Runtime,
OpenVINO, TensorRT -> validate against the float baseline, with CI gates.
The public Python API is `nnship.api`; the core types are in `nnship.core`.
"""

__version__ = "0.1.0"
