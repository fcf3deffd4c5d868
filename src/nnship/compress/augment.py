"""Augmentation of image-like inputs for distillation with little data.

With a few hundred unlabelled images, a student distilled on the same images every epoch
overfits them and learns little of the teacher's function. Showing it new views of the same
images (random resized crops and horizontal flips, as in Inception / ResNet training, Szegedy
et al. 2015; and mixup, Zhang et al. 2018, convex combinations of two images), labelled by the
teacher on the *augmented* batch, is what makes distillation work from little data ("Knowledge
distillation: A good teacher is patient and consistent", Beyer et al. 2022, who use the same
crops and mixup with the teacher run on the student's view).

Only 4-D floating-point inputs (N, C, H, W) are augmented; every other input (token ids,
masks, audio) passes through unchanged, so the same config is safe for any model.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from nnship.compress.config import DistillConfig

Tensors = dict[str, torch.Tensor]


MIN_IMAGE_SIDE = 32
"""Smaller 4-D inputs (8x8 digits, feature maps) are not photos: crops would erase them."""


def augmentable(inputs: Tensors) -> list[str]:
    """Names of the image-like inputs: 4-D floating point, both spatial sides at least
    `MIN_IMAGE_SIDE` (32) pixels."""
    return [
        k
        for k, v in inputs.items()
        if v.ndim == 4 and v.is_floating_point() and min(v.shape[2:]) >= MIN_IMAGE_SIDE
    ]


def _resized_crop(x: torch.Tensor, scale: tuple[float, float], generator: torch.Generator):
    """One random crop per sample (area fraction in `scale`, aspect ratio in [3/4, 4/3]),
    resized back to the input's size with bilinear interpolation (RandomResizedCrop)."""
    n, _, h, w = x.shape
    area = torch.empty(n).uniform_(scale[0], scale[1], generator=generator)
    log_ratio = torch.empty(n).uniform_(-0.2877, 0.2877, generator=generator)  # ln(3/4), ln(4/3)
    ratio = log_ratio.exp()
    cw = (area * ratio).sqrt().clamp(max=1.0)
    ch = (area / ratio).sqrt().clamp(max=1.0)
    cx = torch.rand(n, generator=generator) * (1 - cw) + cw / 2
    cy = torch.rand(n, generator=generator) * (1 - ch) + ch / 2
    # affine grid in [-1, 1] coordinates: the crop's centre and half-size
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = cw, cx * 2 - 1
    theta[:, 1, 1], theta[:, 1, 2] = ch, cy * 2 - 1
    grid = F.affine_grid(theta, [n, x.shape[1], h, w], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def augment_batch(
    batch: Tensors,
    labels: torch.Tensor | None,
    config: DistillConfig,
    generator: torch.Generator,
) -> tuple[Tensors, torch.Tensor | None, tuple[torch.Tensor, float] | None]:
    """An augmented copy of `batch`: random resized crops, flips and mixup of its image-like
    inputs as `config` says. Returns (batch, labels, mixup) where mixup is (permutation,
    lambda) when images were mixed (the label loss mixes the two labels' losses the same way),
    else None."""
    names = augmentable(batch)
    if not names:
        return batch, labels, None
    out = dict(batch)
    n = len(next(iter(batch.values())))
    flip = torch.rand(n, generator=generator) < 0.5 if config.augment_flip else None
    for name in names:
        x = out[name]
        if config.augment_crop_scale[0] < 1.0:
            x = _resized_crop(x, config.augment_crop_scale, generator)
        if flip is not None:
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        out[name] = x
    mix = None
    if config.augment_mixup > 0 and n > 1:
        # lambda ~ Beta(alpha, alpha), drawn from the seeded generator (resumable runs)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        alpha = config.augment_mixup
        lam = float(np.random.default_rng(seed).beta(alpha, alpha))
        perm = torch.randperm(n, generator=generator)
        for name in names:
            out[name] = lam * out[name] + (1 - lam) * out[name][perm]
        mix = (perm, lam)
    return out, labels, mix
