"""A task metric of one's own for `callable.toml`: nnship calls it once per evaluation batch
with dicts of numpy arrays (first axis the batch) and averages each value over the samples."""

import numpy as np


def word_agreement(reference, candidate, inputs, labels):
    """Greedy word ids ([N, T, vocab] logits -> argmax per step) of the candidate against the
    float model: the fraction of steps with the same word, and the number of changed steps per
    sample."""
    ref = reference["logits"].argmax(-1)
    cand = candidate["logits"].argmax(-1)
    same = ref == cand
    return {
        "word_agreement": float(same.mean()),
        "word_changes": float((~same).sum(axis=-1).mean()),
    }
