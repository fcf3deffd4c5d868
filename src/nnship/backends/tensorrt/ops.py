"""What the TensorRT ONNX parser supports: the maintained list `nnship check --target tensorrt`
checks against.

Source: onnx-tensorrt `docs/operators.md` for TensorRT 10.15 ("supports operators in the
inclusive range of opset 9 to opset 24"); TensorRT 11 keeps the same parser surface and makes
strong typing mandatory. Update `TENSORRT_VERSION`, the sets and `OPSET_RANGE` together when
a new TensorRT release changes the table. Only the default ONNX domain ("" / "ai.onnx") is
supported; custom domains (com.microsoft, ...) need TensorRT plugins.
"""

from __future__ import annotations

TENSORRT_VERSION = "10.15"
"""TensorRT release the tables below were taken from."""

OPSET_RANGE = (9, 24)
"""Inclusive default-domain opset range the parser accepts."""

SUPPORTED_OPS: frozenset[str] = frozenset(
    """
    Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool
    BatchNormalization BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant
    ConstantOfShape Conv ConvTranspose Cos Cosh CumSum DeformConv DepthToSpace DequantizeLinear
    Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten Floor Gather GatherElements
    GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater GreaterOrEqual
    GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax
    Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less
    LessOrEqual Log LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean
    MeanVarianceNormalization Min Mish Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad
    ParametricSoftplus Pow PRelu QuantizeLinear RandomNormal RandomNormalLike RandomUniform
    RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax
    ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
    ReverseSequence RMSNormalization RNN RoiAlign RotaryEmbedding Round STFT ScaledTanh Scan
    Scatter ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax
    Softplus Softsign SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter
    ThresholdedRelu Tile TopK Transpose Trilu Unsqueeze Upsample Where Xor
    """.split()
)

UNSUPPORTED_OPS: frozenset[str] = frozenset(
    """
    AffineGrid Bernoulli BitShift BitwiseAnd BitwiseNot BitwiseOr BitwiseXor Col2Im
    CenterCropPad Compress ConcatFromSequence ConvInteger DFT Det DynamicQuantizeLinear
    ImageDecoder MatMulInteger MaxRoiPool MaxUnpool MelWeightMatrix Multinomial
    NegativeLogLikelihoodLoss Optional OptionalGetElement OptionalHasElement QLinearConv
    QLinearMatMul RegexFullMatch SequenceAt SequenceConstruct SequenceEmpty SequenceErase
    SequenceInsert SequenceLength SequenceMap SoftmaxCrossEntropyLoss SplitToSequence
    StringConcat StringNormalizer StringSplit TfIdfVectorizer Unique
    """.split()
)
"""Listed as "N" in the parser's table (named explicitly so the message can say so)."""

_REDUCE_OPS = (
    "ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd "
    "ReduceSum ReduceSumSquare"
).split()

CONSTANT_INPUTS: dict[str, tuple[int, str]] = {
    "CumSum": (1, "axis"),
    "TopK": (1, "K"),
    "OneHot": (1, "depth"),
    "Dropout": (2, "training_mode"),
    **{op: (1, "axes") for op in _REDUCE_OPS},
}
"""op type -> (input index, input name) that the parser needs as a build-time constant."""

UNSUPPORTED_ATTRIBUTES: dict[str, dict[str, object]] = {
    "Resize": {"mode": {"cubic"}, "antialias": {1}},
    "ScatterND": {"reduction": {"add", "mul", "max", "min"}},
    "ScatterElements": {"reduction": {"mul"}},
    "TopK": {"sorted": {0}},
    "LSTM": {"layout": {1}, "input_forget": {1}},
}
"""op type -> attribute -> values the parser rejects (from the table's restrictions)."""

SINGLE_OUTPUT_OPS: dict[str, str] = {
    "MaxPool": "the Indices output is unsupported",
    "LayerNormalization": "only the first output Y is supported",
}

UNIT_DILATION_OPS = ("AveragePool", "MaxPool", "LpPool")
"""Pooling ops whose `dilations` must be empty or all ones."""

QUANTIZED_TYPES = ("int8",)
"""Q/DQ integer types nnship's TensorRT path accepts (TensorRT also has FP8/INT4/FP4 on newer
GPUs, but nnship's TensorRT profile is symmetric INT8)."""
