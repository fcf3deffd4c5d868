"""Reference architectures for examples, tests and benchmarks (torchvision is not a dependency).

Each builds at a configurable width; CNNs accept any input size >= 8x8 (global pooling).
- `resnet_small`: ResNet-style, BasicBlocks with residual adds and BatchNorm.
- `mobilenet_small`: MobileNetV2/EfficientNet-style inverted residuals with depthwise convs,
  ReLU6, optional squeeze-and-excitation.
- `encoder_small`: BERT-style transformer encoder over token ids with an attention mask.
- `digits_cnn`: a small CNN for the 8x8 digits (the tests' model; the demo uses `resnet_small`).
"""

from nnship.models.cnn import digits_cnn, mobilenet_small, resnet_small
from nnship.models.transformer import encoder_small

__all__ = ["digits_cnn", "encoder_small", "mobilenet_small", "resnet_small"]
