"""The channel dependency graph: which parameter slices must be pruned together.

Written by hand (after DepGraph, Fang et al. 2023, "DepGraph: Towards Any Structural
Pruning") rather than taken from Torch-Pruning: nnship needs every coupling decision to be
explainable in the report ("blocked: used by view at node x"), errors that name the module,
and fx-level knowledge of the user's own modules so the result stays the same classes.

Every tensor in the traced graph carries, along its channel axis, a list of segments; each
segment is a run of channels of one *channel space*. A conv or linear layer creates a space
(its output channels); BatchNorm, LayerNorm, activations, pooling and depthwise convolutions
pass spaces through; `add`/`mul` of two tensors merges their spaces (residuals prune
identically); `cat` concatenates segments (channel offsets); `flatten` widens each channel to
H*W consecutive features (flatten -> Linear). Spaces merged by these rules form a
`ChannelGroup`. Anything the analysis does not understand blocks the spaces it touches, so
unknown ops make pruning less aggressive, never wrong.
"""

from __future__ import annotations

import operator

import torch
import torch.nn.functional as F
from torch import fx, nn

from nnship.compress.groups import ChannelGroup, Slot, _Info, _Seg, _Spaces

__all__ = ["ChannelGroup", "Slot", "build_groups"]

# Modules and functions whose output keeps the input's shape along the channel axis.
_PASS_MODULES = (
    nn.ReLU, nn.ReLU6, nn.SiLU, nn.GELU, nn.Sigmoid, nn.Tanh, nn.Hardswish, nn.Hardsigmoid,
    nn.LeakyReLU, nn.ELU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Identity, nn.Dropout,
    nn.Dropout1d, nn.Dropout2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.Upsample,
)  # fmt: skip
_PASS_FUNCTIONS = {
    F.relu, torch.relu, F.relu6, F.silu, F.gelu, torch.sigmoid, F.sigmoid, torch.tanh,
    F.hardswish, F.hardsigmoid, F.leaky_relu, F.elu, F.mish, F.hardtanh, F.dropout,
    F.max_pool1d, F.max_pool2d, F.avg_pool1d, F.avg_pool2d, F.adaptive_avg_pool1d,
    F.adaptive_avg_pool2d, F.adaptive_max_pool2d, F.interpolate, torch.exp, torch.abs,
    torch.clamp, torch.clip, operator.neg,
}  # fmt: skip
_PASS_METHODS = {
    "relu", "sigmoid", "tanh", "contiguous", "clone", "float", "detach", "clamp", "clamp_min",
    "clamp_max", "exp", "abs", "neg", "sqrt", "relu_", "sigmoid_",
}  # fmt: skip
_BINARY_FUNCTIONS = {
    operator.add, operator.sub, operator.mul, operator.truediv, operator.iadd, operator.isub,
    operator.imul, operator.itruediv, torch.add, torch.sub, torch.mul, torch.div,
}  # fmt: skip
_BINARY_METHODS = {"add", "sub", "mul", "div", "add_", "mul_"}
_REDUCE = {torch.mean, torch.sum, torch.amax}
_REDUCE_METHODS = {"mean", "sum", "amax"}


def _is_depthwise(conv: nn.Module) -> bool:
    return (
        isinstance(conv, nn.modules.conv._ConvNd)
        and conv.groups > 1
        and conv.groups == conv.in_channels == conv.out_channels
    )


class _Builder:
    def __init__(self, gm: fx.GraphModule) -> None:
        self.gm = gm
        self.modules = dict(gm.named_modules())
        self.spaces = _Spaces()
        self.info: dict[fx.Node, _Info | None] = {}
        self.shape_of: dict[fx.Node, _Info] = {}  # x.shape / x.size() nodes -> x's info
        calls: dict[str, int] = {}
        for node in gm.graph.nodes:
            if node.op == "call_module":
                calls[node.target] = calls.get(node.target, 0) + 1
        self.shared = {name for name, count in calls.items() if count > 1}

    # -- helpers -------------------------------------------------------------------------
    def _tensor_info(self, node: fx.Node) -> _Info | None:
        return self.info.get(node)

    @staticmethod
    def _shape(node: fx.Node) -> tuple[int, ...] | None:
        meta = node.meta.get("tensor_meta")
        shape = getattr(meta, "shape", None)
        return tuple(int(d) for d in shape) if shape is not None else None

    def _fresh(self, node: fx.Node, cdim: int, slot: Slot | None, blocked: str = "") -> _Info:
        shape = self._shape(node)
        assert shape is not None
        sid = self.spaces.new(shape[cdim], slot)
        if blocked:
            self.spaces.blocked[sid] = blocked
        return _Info(shape, cdim, [_Seg(sid, shape[cdim])])

    def _block_inputs(self, node: fx.Node, reason: str) -> None:
        for arg in node.all_input_nodes:
            info = self.info.get(arg)
            if info is not None:
                self.spaces.block(info.segs, reason)

    def _passthrough(self, node: fx.Node, src: _Info | None) -> _Info | None:
        shape = self._shape(node)
        if src is None or src.segs is None or shape is None:
            return None
        if len(shape) != len(src.shape) or shape[src.cdim] != src.shape[src.cdim]:
            self.spaces.block(src.segs, f"shape changed along channels at node '{node.name}'")
            return None
        return _Info(shape, src.cdim, src.segs)

    def _merge(self, a: list[_Seg], b: list[_Seg], node: fx.Node) -> bool:
        """Couple two equal-length segment lists channel by channel; False if layouts differ."""
        if [(s.length, s.stride) for s in a] != [(s.length, s.stride) for s in b]:
            return False
        for sa, sb in zip(a, b):
            self.spaces.union(sa.space, sb.space)
        return True

    # -- rules ---------------------------------------------------------------------------
    def _module(self, node: fx.Node) -> _Info | None:
        name = str(node.target)
        mod = self.modules[name]
        src = (
            self.info.get(node.args[0]) if node.args and isinstance(node.args[0], fx.Node) else None
        )
        if name in self.shared and any(True for _ in mod.parameters(recurse=False)):
            reason = f"module '{name}' is called more than once"
            self._block_inputs(node, reason)
            return self._fresh(node, 1, None, reason) if self._shape(node) else None
        if isinstance(mod, nn.modules.conv._ConvNd) and not mod.transposed:
            if _is_depthwise(mod):
                if src is None or src.segs is None or src.cdim != 1:
                    return None
                out = self._passthrough(node, src)
                for offset, seg in self._offsets(src.segs):
                    self.spaces.add_slot(seg.space, Slot(name, "out", "depthwise", offset))
                return out
            if mod.groups != 1:
                self._block_inputs(node, f"grouped convolution '{name}'")
                return self._fresh(node, 1, None, f"grouped convolution '{name}'")
            self._consume(src, name, node, cdim_expected=1)
            return self._fresh(node, 1, Slot(name, "out", "producer"))
        if isinstance(mod, nn.Linear):
            self._consume(src, name, node, cdim_expected=len(src.shape) - 1 if src else -1)
            shape = self._shape(node)
            assert shape is not None
            return self._fresh(node, len(shape) - 1, Slot(name, "out", "producer"))
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            return self._norm(node, src, name, ok=src is not None and src.cdim == 1)
        if isinstance(mod, nn.LayerNorm):
            ok = src is not None and len(mod.normalized_shape) == 1
            ok = ok and src.cdim == len(src.shape) - 1  # type: ignore[union-attr]
            return self._norm(node, src, name, ok=ok)
        if isinstance(mod, nn.Embedding):
            shape = self._shape(node)
            assert shape is not None
            return self._fresh(node, len(shape) - 1, Slot(name, "out", "embedding"))
        if isinstance(mod, nn.Flatten):
            return self._flatten(node, src, mod.start_dim, mod.end_dim)
        if isinstance(mod, _PASS_MODULES):
            return self._passthrough(node, src)
        self._block_inputs(node, f"unsupported layer '{name}' ({type(mod).__name__})")
        return None

    @staticmethod
    def _offsets(segs: list[_Seg]) -> list[tuple[int, _Seg]]:
        out, offset = [], 0
        for seg in segs:
            out.append((offset, seg))
            offset += seg.length * seg.stride
        return out

    def _consume(self, src: _Info | None, name: str, node: fx.Node, cdim_expected: int) -> None:
        if src is None or src.segs is None:
            return
        if src.cdim != cdim_expected:
            self.spaces.block(src.segs, f"'{name}' reads a tensor along a non-channel axis")
            return
        for offset, seg in self._offsets(src.segs):
            self.spaces.add_slot(seg.space, Slot(name, "in", "consumer", offset, seg.stride))

    def _norm(self, node: fx.Node, src: _Info | None, name: str, ok: bool) -> _Info | None:
        if src is None or src.segs is None:
            return None
        if not ok or any(seg.stride != 1 for seg in src.segs):
            self.spaces.block(src.segs, f"normalization '{name}' over a non-channel axis")
            return None
        for offset, seg in self._offsets(src.segs):
            self.spaces.add_slot(seg.space, Slot(name, "out", "norm", offset))
        return self._passthrough(node, src)

    def _flatten(self, node: fx.Node, src: _Info | None, start: int, end: int) -> _Info | None:
        shape = self._shape(node)
        if src is None or src.segs is None or shape is None:
            return None
        rank = len(src.shape)
        start, end = start % rank, end % rank
        c = src.cdim
        if c < start or c > end:
            return _Info(shape, c if c < start else c - (end - start), src.segs)
        if c != start:
            self.spaces.block(
                src.segs, f"flatten merges channels with a leading axis at '{node.name}'"
            )
            return None
        mult = 1
        for d in src.shape[c + 1 : end + 1]:
            mult *= d
        return _Info(shape, c, [_Seg(s.space, s.length, s.stride * mult) for s in src.segs])

    def _reshape(self, node: fx.Node, src: _Info | None) -> _Info | None:
        shape = self._shape(node)
        if src is None or src.segs is None or shape is None:
            return None
        c = src.cdim
        flat = 1
        for d in src.shape[c:]:
            flat *= d
        sizes = (
            node.args[1:]
            if len(node.args) > 2 or not isinstance(node.args[1], (tuple, list))
            else node.args[1]
        )
        sizes = list(sizes)
        if shape == (*src.shape[:c], flat) and len(sizes) == c + 1:
            if sizes[c] == -1 or isinstance(sizes[c], fx.Node):
                return self._flatten(node, src, c, -1)
        self.spaces.block(src.segs, f"reshape at node '{node.name}' (only flatten is supported)")
        return None

    def _binary(self, node: fx.Node) -> _Info | None:
        shape = self._shape(node)
        if shape is None:
            self._block_inputs(node, f"'{node.name}'")
            return None
        operands = [a for a in node.args[:2] if isinstance(a, fx.Node)]
        known = [(a, self.info.get(a)) for a in operands]
        with_segs = [(a, i) for a, i in known if i is not None and i.segs is not None]
        if not with_segs:
            return None
        first = with_segs[0][1]
        cdim = first.cdim + (len(shape) - len(first.shape))  # right-aligned broadcasting
        channels = shape[cdim]
        for arg, info in known:
            arg_shape = self._shape(arg)
            if arg_shape is None:
                continue
            axis = cdim - (len(shape) - len(arg_shape))
            if axis < 0 or arg_shape[axis] == 1 and channels != 1:
                continue  # broadcast along channels: no coupling
            if info is None or info.segs is None:
                reason = f"'{node.name}' combines channels with a tensor of unknown origin"
                for _, other in with_segs:
                    self.spaces.block(other.segs, reason)
                return None
            if axis != info.cdim or not self._merge(first.segs, info.segs, node):
                for _, other in with_segs:
                    self.spaces.block(other.segs, f"'{node.name}' combines different layouts")
                return None
        return _Info(shape, cdim, first.segs)

    def _cat(self, node: fx.Node) -> _Info | None:
        tensors = node.args[0] if node.args else node.kwargs.get("tensors")
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", 0)
        shape = self._shape(node)
        infos = [self.info.get(t) if isinstance(t, fx.Node) else None for t in tensors]
        if shape is None or any(i is None or i.segs is None for i in infos):
            self._block_inputs(node, f"concatenation '{node.name}' of tensors of unknown origin")
            return None
        cdim = infos[0].cdim
        if any(i.cdim != cdim for i in infos) or not isinstance(dim, int):
            self._block_inputs(node, f"concatenation '{node.name}' of different layouts")
            return None
        if dim % len(shape) == cdim:
            return _Info(shape, cdim, [s for i in infos for s in i.segs])
        for other in infos[1:]:
            if not self._merge(infos[0].segs, other.segs, node):
                self._block_inputs(node, f"concatenation '{node.name}' of different layouts")
                return None
        return _Info(shape, cdim, infos[0].segs)

    def _reduce(self, node: fx.Node, src: _Info | None) -> _Info | None:
        shape = self._shape(node)
        if src is None or src.segs is None or shape is None:
            return None
        dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        keep = node.kwargs.get("keepdim", node.args[2] if len(node.args) > 2 else False)
        if dims is None:
            self.spaces.block(src.segs, f"full reduction at '{node.name}'")
            return None
        dims = [dims] if isinstance(dims, int) else list(dims)
        rank = len(src.shape)
        dims = [d % rank for d in dims]
        if src.cdim in dims:
            self.spaces.block(src.segs, f"reduction over channels at '{node.name}'")
            return None
        cdim = src.cdim if keep else src.cdim - sum(d < src.cdim for d in dims)
        return _Info(shape, cdim, src.segs)

    def _getitem(self, node: fx.Node) -> _Info | None:
        base = node.args[0]
        if isinstance(base, fx.Node) and base in self.shape_of:
            src = self.shape_of[base]
            index = node.args[1]
            if not isinstance(index, int) or index % len(src.shape) == src.cdim:
                self.spaces.block(src.segs, f"channel count read by code at '{node.name}'")
            return None
        self._block_inputs(node, f"indexing at '{node.name}'")
        return None

    def visit(self, node: fx.Node) -> None:
        first = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        src = self.info.get(first) if first is not None else None
        out: _Info | None = None
        if node.op in ("placeholder", "get_attr"):
            out = None
        elif node.op == "output":
            self._block_inputs(node, "model output")
        elif node.op == "call_module":
            out = self._module(node)
        elif node.op == "call_function" and node.target is getattr and node.args[1] == "shape":
            if src is not None and src.segs is not None:
                self.shape_of[node] = src
        elif node.op == "call_method" and node.target == "size":
            if src is not None and src.segs is not None:
                dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
                if dim is None:
                    self.shape_of[node] = src
                elif not isinstance(dim, int) or dim % len(src.shape) == src.cdim:
                    self.spaces.block(src.segs, f"channel count read by code at '{node.name}'")
        elif node.op == "call_method" and node.target in ("dim", "numel", "type_as"):
            out = None
        elif node.op == "call_function" and node.target is operator.getitem:
            out = self._getitem(node)
        elif node.target in _PASS_FUNCTIONS or (
            node.op == "call_method" and node.target in _PASS_METHODS
        ):
            out = self._passthrough(node, src)
        elif node.target in _BINARY_FUNCTIONS or (
            node.op == "call_method" and node.target in _BINARY_METHODS
        ):
            out = self._binary(node)
        elif node.target in (torch.cat, torch.concat):
            out = self._cat(node)
        elif node.target is torch.flatten or (
            node.op == "call_method" and node.target == "flatten"
        ):
            start = node.args[1] if len(node.args) > 1 else node.kwargs.get("start_dim", 0)
            end = node.args[2] if len(node.args) > 2 else node.kwargs.get("end_dim", -1)
            out = self._flatten(node, src, start, end)
            if out is None and src is not None:
                self.spaces.block(src.segs, f"flatten at '{node.name}'")
        elif (
            node.op == "call_method"
            and node.target in ("view", "reshape")
            or (node.target is torch.reshape)
        ):
            out = self._reshape(node, src)
        elif node.target in _REDUCE or (
            node.op == "call_method" and node.target in _REDUCE_METHODS
        ):
            out = self._reduce(node, src)
        else:
            what = getattr(node.target, "__name__", str(node.target))
            self._block_inputs(node, f"unsupported op '{what}' at node '{node.name}'")
        self.info[node] = out


def build_groups(gm: fx.GraphModule) -> list[ChannelGroup]:
    """Channel groups of a traced, shape-annotated graph module (see `trace.trace_module`).

    Every group lists its slots; groups that touch a graph input or output, an op the analysis
    does not understand, or a module called twice carry a `blocked` reason.
    """
    builder = _Builder(gm)
    for node in gm.graph.nodes:
        builder.visit(node)
    return builder.spaces.groups()
