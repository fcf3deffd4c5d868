"""Backend quantization profiles: where Q/DQ go and which numeric conventions they use.

One small interface (`QuantProfile`), one profile per backend. Placement and signedness live
here, not in the backends (DESIGN.md). What each runtime fuses, measured or documented:

- onnxruntime: the CPU provider turns DQ->Conv->Q into QLinearConv, DQ->MatMul into
  MatMulIntegerToFloat, DQ->Gemm into QGemm, DQ->Add->Q into QLinearAdd, and drops Q/DQ around
  Relu/Clip/MaxPool/Reshape. Activations must be uint8 (U8S8): signed (S8S8) activations ran
  slower than FP32 on this VNNI CPU. Weights int8, per-channel, symmetric.
- openvino: the low-precision transformations fuse Q/DQ (FakeQuantize) placed on the *inputs*
  of Conv/MatMul/eltwise ops (NNCF's placement); int8 and uint8 activations both run fast.
- tensorrt: explicit quantization needs symmetric int8 with zero point 0 everywhere,
  per-channel weights on the output-channel axis, Q/DQ on the inputs of weighted ops and on
  both inputs of residual adds, never on their outputs (TensorRT fuses the epilogue itself).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnship.core.errors import QuantizationError

WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "MatMul", "Gemm"})
ELTWISE_OPS = frozenset({"Add", "Mul"})
# Shape plumbing and constants: leaving them in float is not worth a line in the report.
STRUCTURAL_OPS = frozenset(
    {
        "Constant",
        "ConstantOfShape",
        "Shape",
        "Size",
        "Cast",
        "CastLike",
        "Identity",
        "Reshape",
        "Transpose",
        "Flatten",
        "Squeeze",
        "Unsqueeze",
        "Concat",
        "Slice",
        "Gather",
        "Split",
        "Expand",
        "Range",
        "Equal",
        "Where",
        "Not",
        "Dropout",
    }
)
_POOLS = frozenset({"MaxPool", "AveragePool", "GlobalAveragePool"})


@dataclass(frozen=True)
class QuantProfile:
    """Q/DQ conventions of one backend.

    - `activation_type`: "uint8" or "int8"; `activation_symmetric`: zero point 0 for activations.
    - Weights are always int8 symmetric (zero point 0), per-channel on the output axis when the
      config asks for per-channel.
    - `weighted_ops` are quantized when their weight (W / B) is a constant.
    - `eltwise_ops` are quantized when both inputs are activations and one comes from a
      quantized node (a residual add); `follower_ops` (pools, Relu/Clip) when their input
      comes from a quantized node.
    - `exclude_output_ops`: op types whose outputs get no Q/DQ (only their inputs do).
    - `float_norm_inputs`: eltwise ops whose output feeds a LayerNorm-like normalization (the
      residual adds of a transformer) stay float, as NNCF's transformer mode keeps them: that
      stream carries the outlier channels of pretrained transformers, and keeping it float
      costs one float Add per block. Default True in every profile.
    """

    name: str
    activation_type: str
    activation_symmetric: bool
    weighted_ops: frozenset[str] = WEIGHTED_OPS
    eltwise_ops: frozenset[str] = ELTWISE_OPS
    follower_ops: frozenset[str] = frozenset()
    exclude_output_ops: frozenset[str] = frozenset()
    float_norm_inputs: bool = True
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def op_types(self) -> frozenset[str]:
        """Every op type this profile may quantize."""
        return self.weighted_ops | self.eltwise_ops | self.follower_ops

    def ort_types(self) -> tuple[Any, Any]:
        """(activation QuantType, weight QuantType) for onnxruntime.quantization."""
        from onnxruntime.quantization import QuantType

        act = QuantType.QUInt8 if self.activation_type == "uint8" else QuantType.QInt8
        return act, QuantType.QInt8

    def ort_extra_options(self) -> dict[str, Any]:
        """`extra_options` for onnxruntime.quantization's QDQQuantizer."""
        options: dict[str, Any] = {
            "ActivationSymmetric": self.activation_symmetric,
            "WeightSymmetric": True,
            "OpTypesToExcludeOutputQuantization": sorted(self.exclude_output_ops),
        }
        options.update(self.extra)
        return options

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "activations": f"{self.activation_type} "
            + ("symmetric" if self.activation_symmetric else "asymmetric"),
            "weights": "int8 symmetric",
            "op_types": sorted(self.op_types),
            "outputs_not_quantized": sorted(self.exclude_output_ops),
            "float_norm_inputs": self.float_norm_inputs,
            "notes": self.notes,
        }


ONNXRUNTIME = QuantProfile(
    name="onnxruntime",
    activation_type="uint8",
    activation_symmetric=False,
    follower_ops=frozenset(
        {"Relu", "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "Sigmoid"}
    ),
    # DQ->MatMul/Gemm with a float output fuses to MatMulIntegerToFloat / QGemm; quantizing
    # their outputs would only add a Q/DQ before the float bias Add or the logits.
    exclude_output_ops=frozenset({"MatMul", "Gemm"}),
    notes="U8S8: uint8 asymmetric activations, int8 symmetric weights (the fast path of ORT CPU).",
)

OPENVINO = QuantProfile(
    name="openvino",
    activation_type="uint8",
    activation_symmetric=False,
    follower_ops=_POOLS,
    exclude_output_ops=frozenset(WEIGHTED_OPS | ELTWISE_OPS | _POOLS),
    notes="Q/DQ on inputs of Conv/MatMul/eltwise ops, as NNCF places FakeQuantize.",
)

TENSORRT = QuantProfile(
    name="tensorrt",
    activation_type="int8",
    activation_symmetric=True,
    eltwise_ops=frozenset({"Add"}),
    follower_ops=_POOLS,
    exclude_output_ops=frozenset(WEIGHTED_OPS | _POOLS | {"Add"}),
    # TensorRT's ONNX parser rejects int32 DequantizeLinear (onnx/onnx-tensorrt#850): biases
    # stay float and TensorRT folds them into its INT8 kernels itself.
    extra={"QuantizeBias": False},
    notes="Symmetric int8, zero point 0, per-channel weights, float biases; both inputs of "
    "residual adds.",
)

_PROFILES = {p.name: p for p in (ONNXRUNTIME, OPENVINO, TENSORRT)}


def get_profile(name: str) -> QuantProfile:
    """The profile for a backend name; `QuantizationError` listing the known ones otherwise."""
    try:
        return _PROFILES[name]
    except KeyError:
        raise QuantizationError(
            f"Unknown quantization profile '{name}'; choose one of {sorted(_PROFILES)}"
        ) from None


def profile_names() -> list[str]:
    return sorted(_PROFILES)
