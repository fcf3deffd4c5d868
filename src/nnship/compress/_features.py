"""Intermediate-feature matching for distillation (FitNets, Romero et al. 2015).

Forward hooks capture the named layers' outputs in teacher and student; a learned projection
(1x1 conv on NCHW maps, linear on the last axis otherwise) maps the student's channels to the
teacher's when a pruned student has fewer. Hooks are removed by `close()`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nnship.core.errors import CompressionError
from nnship.sources.binding import call_module


class FeatureMatcher:
    def __init__(
        self,
        teacher: nn.Module,
        student: nn.Module,
        layers: list[str],
        probe: dict[str, torch.Tensor],
    ) -> None:
        self.teacher = teacher
        self.layers = list(layers)
        self._teacher_feats: dict[str, torch.Tensor] = {}
        self._student_feats: dict[str, torch.Tensor] = {}
        self._handles = []
        t_mods, s_mods = dict(teacher.named_modules()), dict(student.named_modules())
        for name in self.layers:
            for what, mods, store in (
                ("teacher", t_mods, self._teacher_feats),
                ("student", s_mods, self._student_feats),
            ):
                if name not in mods:
                    raise CompressionError(f"feature_layers: '{name}' is not a layer of the {what}")
                self._handles.append(mods[name].register_forward_hook(self._hook(name, store)))
        with torch.no_grad():
            call_module(teacher, probe)
            call_module(student, probe)
        self.projections = nn.ModuleDict()
        for i, name in enumerate(self.layers):
            t, s = self._teacher_feats[name], self._student_feats[name]
            self.projections[str(i)] = self._projection(name, s, t)

    @staticmethod
    def _hook(name: str, store: dict[str, torch.Tensor]):
        def hook(module: nn.Module, args: object, output: object) -> None:
            if isinstance(output, torch.Tensor):
                store[name] = output

        return hook

    @staticmethod
    def _projection(name: str, s: torch.Tensor, t: torch.Tensor) -> nn.Module:
        if s.shape == t.shape:
            return nn.Identity()
        if s.ndim == 4 and s.shape[0] == t.shape[0] and s.shape[2:] == t.shape[2:]:
            return nn.Conv2d(s.shape[1], t.shape[1], 1, bias=False)
        if s.shape[:-1] == t.shape[:-1]:
            return nn.Linear(s.shape[-1], t.shape[-1], bias=False)
        raise CompressionError(
            f"feature_layers: '{name}' has shape {tuple(s.shape)} in the student and "
            f"{tuple(t.shape)} in the teacher; only the channel count may differ"
        )

    def parameters(self) -> list[nn.Parameter]:
        return list(self.projections.parameters())

    def state_dict(self) -> dict:
        return self.projections.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.projections.load_state_dict(state)

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """MSE between projected student features (captured in the student's last forward) and
        the teacher's features on `batch`."""
        with torch.no_grad():
            call_module(self.teacher, batch)
        total = torch.zeros(())
        for i, name in enumerate(self.layers):
            s = self.projections[str(i)](self._student_feats[name])
            total = total + F.mse_loss(s, self._teacher_feats[name].detach())
        return total / len(self.layers)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
