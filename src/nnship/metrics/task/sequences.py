"""Sequences: greedy CTC decoding (Graves et al., "Connectionist Temporal Classification",
2006: best path, repeats collapsed, blanks removed) and the character error rate.

The edit distance is written by hand (Wagner-Fischer dynamic programming, one row at a time):
decoded strings are short (tens of symbols), and no dependency nnship has offers it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nnship.metrics.task.base import MetricError, Outputs, TaskScorer, safe_ratio
from nnship.metrics.task.config import SequenceMetric


def edit_distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    """Levenshtein distance (insertions, deletions, substitutions all cost 1)."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def ctc_greedy(logits: np.ndarray, config: SequenceMetric) -> list[tuple[int, ...]]:
    """Per sample: argmax per step, repeats collapsed, `blank` dropped."""
    x = np.asarray(logits)
    nd = x.ndim
    if nd != 3:
        raise MetricError(
            f"sequence metric: CTC logits are 3-D (batch, time, classes), got {x.shape}"
        )
    cls_axis = config.class_axis % nd
    batch_axis = config.batch_axis % nd
    if cls_axis == batch_axis:
        raise MetricError("sequence metric: class_axis and batch_axis are the same axis")
    time_axis = (
        config.time_axis % nd
        if config.time_axis is not None
        else (({0, 1, 2} - {cls_axis, batch_axis}).pop())
    )
    indices = x.argmax(cls_axis)
    # after the argmax the class axis is gone: re-index the other two
    remaining = [a for a in range(nd) if a != cls_axis]
    indices = np.moveaxis(
        indices, [remaining.index(batch_axis), remaining.index(time_axis)], [0, 1]
    )
    out = []
    for row in indices:
        keep = np.ones(len(row), dtype=bool)
        keep[1:] = row[1:] != row[:-1]
        out.append(tuple(int(v) for v in row[keep] if v != config.blank))
    return out


def load_charset(config: SequenceMetric, base_dir: Path | None = None) -> list[str] | None:
    if config.charset is not None:
        return list(config.charset)
    if config.charset_file is None:
        return None
    path = Path(config.charset_file)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise MetricError(f"sequence metric: charset_file '{path}' cannot be read: {exc}") from exc


class SequenceScorer(TaskScorer):
    """Exact-sequence agreement and character error rate against the baseline's decode."""

    kind = "sequence"

    def __init__(self, config: SequenceMetric, charset: list[str] | None = None) -> None:
        super().__init__(config.output)
        self.config = config
        self.charset = charset
        self.n = self.exact = self.edits = self.length = 0
        self.examples: list[tuple[str, str]] = []
        """Up to 5 (baseline, candidate) decodes that differ, as text."""

    def text(self, seq: tuple[int, ...]) -> str:
        if self.charset is None:
            return " ".join(map(str, seq))
        return "".join(self.charset[i] if 0 <= i < len(self.charset) else "?" for i in seq)

    def update(self, reference: Outputs, candidate: Outputs, inputs, labels=None) -> None:  # noqa: ANN001
        ref = ctc_greedy(self.pick(reference), self.config)
        cand = ctc_greedy(self.pick(candidate), self.config)
        for r, c in zip(ref, cand):
            self.n += 1
            self.exact += r == c
            self.edits += edit_distance(r, c)
            self.length += len(r)
            if r != c and len(self.examples) < 5:
                self.examples.append((self.text(r), self.text(c)))

    def _result(self) -> dict[str, float]:
        cer = self.edits / self.length if self.length else float(self.edits > 0)
        return {"seq_exact": safe_ratio(self.exact, self.n), "cer": float(cer)}
