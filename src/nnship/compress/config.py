"""The recipe's `[prune]` and `[distill]` sections (pydantic, `extra="forbid"`).

Pruning ratio, defined once: for **structured** pruning it is the fraction of *channels*
removed from each prunable channel group (a conv's output channels together with everything
coupled to them), before rounding to `round_to`. Parameters and FLOPs fall faster than the
ratio (a conv between two pruned groups loses about 1 - (1 - r)^2 of its weights); the
prune report gives the measured parameter and FLOP ratios. For **unstructured** pruning it is
the fraction of *weights* (of the pruned Conv/Linear layers) set to zero. The `2:4` pattern
is always 50% sparsity.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PruneMethod = Literal["structured", "unstructured", "2:4"]
Importance = Literal["l1", "l2", "bn_scale", "taylor"]


class PruneConfig(BaseModel):
    """How to prune. Defaults: structured, ratio 0.5, L1 importance, uniform scope, first conv
    and classifier head protected, channel counts rounded to multiples of 8, one step."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: PruneMethod = "structured"
    """`structured` removes whole channels (a smaller dense model); `unstructured` zeroes the
    smallest-magnitude weights; `2:4` keeps the 2 largest of every 4 consecutive input weights."""
    ratio: float = Field(default=0.5, ge=0.0, lt=1.0)
    """Fraction in [0, 1): of channels per group (structured) or of weights (unstructured)."""
    importance: Importance = "l1"
    """Channel importance: `l1`/`l2` weight norms of the coupled group, `bn_scale` |gamma| of
    BatchNorm/LayerNorm (Network Slimming), `taylor` first-order Taylor (needs data)."""
    scope: Literal["uniform", "global", "sensitivity"] = "uniform"
    """`uniform`: every group loses `ratio` of its channels (or every layer `ratio` of its
    weights). `global`: one threshold over normalized importances of all groups/layers.
    `sensitivity` (unstructured only): `ratio` of all weights, spread by each layer's measured
    output error on the data (or the example inputs), so small sensitive layers (3x3
    depthwise, the stem) keep most of their weights."""
    layer_ratios: dict[str, float] = Field(default_factory=dict)
    """Per-layer overrides: module name (or fnmatch glob) -> ratio. A structured group takes the
    override of any of its producing layers; such groups are left out of the global ranking."""
    protect: list[str] | None = None
    """Module names (or globs) whose output channels/weights are never pruned. None (default):
    the first convolution and the classifier head (last Linear). [] protects nothing."""
    round_to: int = Field(default=8, ge=1)
    """Kept channel counts are rounded to the nearest multiple of this (fast kernels: 8 suits
    AVX2 CPUs and TensorRT FP16; 16 suits AVX-512 CPUs, where ONNX Runtime blocks conv channels
    by 16 and a multiple of 8 only adds layout reorders). A group smaller than it is kept whole."""
    max_group_ratio: float = Field(default=0.9, gt=0.0, lt=1.0)
    """Global scope never removes more than this fraction of one group (avoids layer collapse)."""
    steps: int = Field(default=1, ge=1)
    """Iterative schedule: prune in this many steps (with distillation in between when a
    `[distill]` section is given), each reaching an equal share of the final ratio."""
    recalibrate_bn: bool = True
    """When data is given: re-estimate every BatchNorm's running mean/variance on it after
    pruning (no gradient, no weight change). Without it a pruned model's accuracy is often
    near chance until it is fine-tuned or distilled."""
    batch_size: int = Field(default=32, ge=1)
    """Batch size for Taylor importance and BatchNorm recalibration."""
    max_samples: int = Field(default=256, ge=1)
    """Samples of the data used for Taylor importance and BatchNorm recalibration (the first
    ones, in order)."""

    @field_validator("layer_ratios")
    @classmethod
    def _ratios_in_range(cls, value: dict[str, float]) -> dict[str, float]:
        for name, ratio in value.items():
            if not 0.0 <= ratio < 1.0:
                raise ValueError(f"layer_ratios['{name}'] = {ratio} is outside [0, 1)")
        return value

    @model_validator(mode="after")
    def _pattern_is_half(self) -> PruneConfig:
        if self.scope == "sensitivity" and self.method != "unstructured":
            raise ValueError("scope 'sensitivity' applies to method 'unstructured' only")
        if self.method == "2:4" and self.ratio != 0.5:
            raise ValueError("method '2:4' is 50% sparsity by definition; leave ratio at 0.5")
        return self


class DistillConfig(BaseModel):
    """How to distill a student from a teacher (Hinton et al. 2015, "Distilling the Knowledge in
    a Neural Network"). Defaults: 8 epochs, AdamW lr 1e-3, cosine schedule, temperature 4,
    KL on outputs plus 0.5 x cross-entropy on labels when the data has labels, 10% validation
    split, early stopping after 3 epochs without gain.

    The defaults were measured on the digits benchmark (`bench/pruning.py`): a ResNet-style
    student pruned at ratio 0.5 (BatchNorm recalibrated) needs about 6 epochs to come within
    one point of its teacher's test accuracy; 8 leave a margin."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(default=8, ge=1)
    batch_size: int = Field(default=32, ge=1)
    lr: float = Field(default=1e-3, gt=0.0)
    """Peak learning rate."""
    weight_decay: float = Field(default=0.0, ge=0.0)
    schedule: Literal["cosine", "constant", "onecycle"] = "cosine"
    """Learning-rate schedule over all steps."""
    temperature: float = Field(default=4.0, gt=0.0)
    """Softmax temperature of the KL term; the term is scaled by T^2 (Hinton et al.)."""
    output_loss: Literal["kl", "mse"] = "kl"
    """`kl` for logits (classifiers); `mse` for embeddings or regression outputs."""
    kd_weight: float = Field(default=1.0, ge=0.0)
    label_weight: float = Field(default=0.5, ge=0.0)
    """Weight of cross-entropy against labels (used only when the data has labels; 0 trains on
    the teacher alone). Labels are always used to report accuracy."""
    feature_layers: list[str] = Field(default_factory=list)
    """Module names present in both teacher and student whose outputs are matched (FitNets,
    Romero et al. 2015): MSE after a learned 1x1 projection when channel counts differ."""
    feature_weight: float = Field(default=1.0, ge=0.0)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    """Fraction of the data held out for validation when no validation data is given."""
    patience: int | None = Field(default=3, ge=1)
    """Stop after this many epochs without a better validation loss (None: never stop early).
    The best epoch's weights are restored at the end."""
    augment: bool | None = None
    """Augment image-like inputs (4-D float N,C,H,W, both sides >= 32 px) while training: random resized crops,
    horizontal flips and mixup, the teacher labelling each augmented batch (see
    compress/augment.py). None (default): on when the model has image-like inputs, the
    training split holds fewer than 10,000 samples and the run has at least 100 optimizer
    steps (see `min_steps`); other inputs are never augmented."""
    augment_crop_scale: tuple[float, float] = (0.35, 1.0)
    """Area fraction range of the random crops (1.0, 1.0 turns cropping off)."""
    augment_flip: bool = True
    augment_mixup: float = Field(default=0.2, ge=0.0)
    """Mixup Beta(alpha, alpha) concentration; 0 turns mixup off."""
    min_steps: int = Field(default=0, ge=0)
    """Train at least this many optimizer steps: with little data, `epochs` is raised so that
    epochs x steps per epoch reaches it (0: exactly `epochs`)."""
    recalibrate_bn: bool = True
    """Re-estimate BatchNorm running statistics on the (un-augmented) training data after
    training, so they describe the images the student will see, not the augmented ones."""
    seed: int = 0
    max_samples: int | None = Field(default=None, ge=1)
    """Use at most this many samples of the data (the first ones)."""
    checkpoint: str | None = None
    """File written atomically after every epoch (student, optimizer, schedule, best weights)."""
    resume: bool = False
    """Continue from `checkpoint` if it exists."""

    @field_validator("augment_crop_scale")
    @classmethod
    def _scale_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0.0 < value[0] <= value[1] <= 1.0:
            raise ValueError(f"augment_crop_scale {value} must satisfy 0 < low <= high <= 1")
        return value

    @model_validator(mode="after")
    def _some_loss(self) -> DistillConfig:
        if self.kd_weight == 0 and self.label_weight == 0 and not self.feature_layers:
            raise ValueError("kd_weight and label_weight are both 0 and no feature_layers: no loss")
        if self.resume and not self.checkpoint:
            raise ValueError("resume = true needs a checkpoint path")
        return self
