"""Channel groups and the union-find over channel spaces that builds them (see graph.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Slot:
    """One parameter axis slice that follows a channel space.

    Channel `c` of the space is features `start + c*stride ... start + (c+1)*stride - 1`
    along the module's `role` axis ("out": output/per-channel axis, "in": input axis).
    """

    module: str
    role: str
    kind: str  # "producer", "consumer", "norm", "depthwise", "embedding"
    start: int = 0
    stride: int = 1


@dataclass
class ChannelGroup:
    """Coupled channels: pruning channel c removes slice c of every slot."""

    id: int
    size: int
    slots: list[Slot] = field(default_factory=list)
    blocked: str = ""
    """Why this group cannot be pruned ("" when it can)."""

    @property
    def prunable(self) -> bool:
        return not self.blocked and any(s.kind in ("producer", "embedding") for s in self.slots)

    @property
    def producers(self) -> list[str]:
        return sorted({s.module for s in self.slots if s.kind in ("producer", "embedding")})

    @property
    def name(self) -> str:
        producers = self.producers
        return producers[0] if producers else f"group{self.id}"


@dataclass(frozen=True)
class _Seg:
    space: int
    length: int
    stride: int = 1


@dataclass
class _Info:
    shape: tuple[int, ...]
    cdim: int
    segs: list[_Seg] | None  # None: channel origin unknown


class _Spaces:
    """Union-find over channel spaces with their slots and blocking reasons."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.size: list[int] = []
        self.slots: dict[int, list[Slot]] = {}
        self.blocked: dict[int, str] = {}

    def new(self, size: int, slot: Slot | None = None) -> int:
        sid = len(self.parent)
        self.parent.append(sid)
        self.size.append(size)
        self.slots[sid] = [slot] if slot else []
        return sid

    def find(self, sid: int) -> int:
        while self.parent[sid] != sid:
            self.parent[sid] = self.parent[self.parent[sid]]
            sid = self.parent[sid]
        return sid

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        assert self.size[ra] == self.size[rb], "only equal-size spaces are merged"
        self.parent[rb] = ra
        self.slots[ra] += self.slots.pop(rb)
        if rb in self.blocked and ra not in self.blocked:
            self.blocked[ra] = self.blocked[rb]

    def add_slot(self, sid: int, slot: Slot) -> None:
        self.slots[self.find(sid)].append(slot)

    def block(self, segs: list[_Seg] | None, reason: str) -> None:
        for seg in segs or []:
            self.blocked.setdefault(seg.space, reason)

    def groups(self) -> list[ChannelGroup]:
        roots = sorted({self.find(s) for s in range(len(self.parent))})
        blocked: dict[int, str] = {}
        for sid, reason in self.blocked.items():
            blocked.setdefault(self.find(sid), reason)
        out = []
        for root in roots:
            slots = list(dict.fromkeys(self.slots[root]))
            out.append(ChannelGroup(root, self.size[root], slots, blocked.get(root, "")))
        return out
