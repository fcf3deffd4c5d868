"""ResNet-style and MobileNetV2/EfficientNet-style CNNs at configurable width."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, k, stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs and a residual add (1x1 projection when shapes change)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(*_conv_bn(cin, cout, 1, stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNetSmall(nn.Module):
    def __init__(
        self,
        num_classes: int = 10,
        width: int = 16,
        in_channels: int = 3,
        depths: tuple[int, ...] = (1, 1, 1),
        stem_stride: int = 1,
    ) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn(in_channels, width, 3, stem_stride), nn.ReLU())
        layers: list[nn.Module] = []
        cin = width
        for stage, depth in enumerate(depths):
            cout = width * (2**stage)
            for i in range(depth):
                layers.append(BasicBlock(cin, cout, stride=2 if (i == 0 and stage > 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layers(self.stem(x))
        return self.fc(torch.flatten(self.pool(x), 1))


def resnet_small(
    num_classes: int = 10,
    width: int = 16,
    in_channels: int = 3,
    depths: tuple[int, ...] = (1, 1, 1),
    stem_stride: int = 1,
) -> ResNetSmall:
    """ResNet-style classifier: stem, stages of BasicBlocks (width doubles per stage), GAP, FC.

    `stem_stride=2` halves the resolution in the stem, as ImageNet ResNets do (there with a 7x7
    conv and a max pool), so 64x64 inputs cost about a quarter of the compute."""
    return ResNetSmall(num_classes, width, in_channels, tuple(depths), stem_stride)


class SqueezeExcite(nn.Module):
    """EfficientNet squeeze-and-excitation: channel gates from globally pooled features."""

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(reduced, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, (SE), 1x1 linear projection, residual."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, se: bool) -> None:
        super().__init__()
        hidden = cin * expand
        self.use_residual = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers += [*_conv_bn(cin, hidden, 1), nn.ReLU6()]
        layers += [*_conv_bn(hidden, hidden, 3, stride, groups=hidden), nn.ReLU6()]
        if se:
            layers.append(SqueezeExcite(hidden, max(8, cin // 4)))
        layers += _conv_bn(hidden, cout, 1)
        self.block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetSmall(nn.Module):
    # (expand, channels, repeats, stride) per stage, MobileNetV2's table shortened.
    STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 2, 2), (6, 64, 2, 2))

    def __init__(
        self,
        num_classes: int = 10,
        width_mult: float = 1.0,
        in_channels: int = 3,
        squeeze_excite: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()

        def ch(c: int) -> int:
            return max(8, int(round(c * width_mult / 8)) * 8)

        stem = ch(32)
        self.stem = nn.Sequential(*_conv_bn(in_channels, stem, 3), nn.ReLU6())
        blocks: list[nn.Module] = []
        cin = stem
        for expand, c, repeats, stride in self.STAGES:
            cout = ch(c)
            for i in range(repeats):
                blocks.append(
                    InvertedResidual(cin, cout, stride if i == 0 else 1, expand, squeeze_excite)
                )
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        head = ch(256)
        self.head = nn.Sequential(*_conv_bn(cin, head, 1), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(head, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(self.dropout(torch.flatten(self.pool(x), 1)))


def mobilenet_small(
    num_classes: int = 10,
    width_mult: float = 1.0,
    in_channels: int = 3,
    squeeze_excite: bool = False,
) -> MobileNetSmall:
    """MobileNetV2-style classifier (EfficientNet-style with `squeeze_excite=True`)."""
    return MobileNetSmall(num_classes, width_mult, in_channels, squeeze_excite)


class DigitsCnn(nn.Module):
    """A small CNN for the 8x8 digits: two conv blocks, then flatten into a two-layer MLP."""

    def __init__(self, num_classes: int = 10, width: int = 16, in_channels: int = 1) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn(in_channels, width, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            *_conv_bn(width, 2 * width, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * 2 * 2, 64), nn.ReLU(), nn.Linear(64, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def digits_cnn(num_classes: int = 10, width: int = 16, in_channels: int = 1) -> DigitsCnn:
    """Small CNN for 8x8 digits (input `x`: N x 1 x 8 x 8 float32)."""
    return DigitsCnn(num_classes, width, in_channels)
