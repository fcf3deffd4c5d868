"""A BERT-style transformer encoder written out in plain torch ops.

Attention is written by hand (not `nn.MultiheadAttention`) because that is what exported
Hugging Face encoders look like: the padding mask becomes an additive bias built from the
float32 minimum, the tensor quantizers must learn to leave in float.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SelfAttention(nn.Module):
    def __init__(self, d_model: int, heads: int) -> None:
        super().__init__()
        assert d_model % heads == 0, "d_model must be divisible by heads"
        self.heads = heads
        self.head_dim = d_model // heads
        self.query = nn.Linear(d_model, d_model)
        self.key = nn.Linear(d_model, d_model)
        self.value = nn.Linear(d_model, d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_bias
        context = torch.softmax(scores, dim=-1) @ v
        return self.out(context.transpose(1, 2).reshape(b, t, d))


class EncoderLayer(nn.Module):
    """Post-LayerNorm encoder layer (BERT): attention, add & norm, GELU MLP, add & norm."""

    def __init__(self, d_model: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.attention = SelfAttention(d_model, heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, d_model * mlp_ratio),
            nn.GELU(),
            nn.Linear(d_model * mlp_ratio, d_model),
        )
        self.norm2 = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x + self.attention(x, mask_bias))
        return self.norm2(x + self.mlp(x))


class EncoderSmall(nn.Module):
    def __init__(
        self,
        vocab_size: int = 1000,
        max_len: int = 128,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, d_model)
        self.position_embedding = nn.Embedding(max_len, d_model)
        self.embedding_norm = nn.LayerNorm(d_model)
        self.layers = nn.ModuleList(EncoderLayer(d_model, heads) for _ in range(layers))
        self.classifier = nn.Linear(d_model, num_classes) if num_classes else None

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embedding_norm(
            self.token_embedding(input_ids) + self.position_embedding(positions)
        )
        mask = attention_mask.to(x.dtype)
        # Hugging Face's additive mask: 0 where attended, float32 min where padded.
        mask_bias = (1.0 - mask[:, None, None, :]) * torch.finfo(x.dtype).min
        for layer in self.layers:
            x = layer(x, mask_bias)
        # Masked mean pooling -> sentence embedding (as sentence-transformers do).
        weights = mask.unsqueeze(-1)
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.classifier(pooled) if self.classifier is not None else pooled


def encoder_small(
    vocab_size: int = 1000,
    max_len: int = 128,
    d_model: int = 64,
    heads: int = 4,
    layers: int = 2,
    num_classes: int | None = None,
) -> EncoderSmall:
    """BERT-style encoder. Inputs `input_ids` and `attention_mask` (N x T int64).

    Returns class logits when `num_classes` is set, else the mean-pooled sentence embedding.
    """
    return EncoderSmall(vocab_size, max_len, d_model, heads, layers, num_classes)
