"""`nnship build` runs the iterative schedule of `[prune] steps` with `[distill]`: every step
prunes, then distills, each step is its own cached stage, and the result is not a one-step
pruning."""

from __future__ import annotations

import pytest

from nnship.core.fileio import sha256_file

SCHEDULE = """
[prune]
ratio = 0.5
round_to = 1
steps = {steps}

[distill]
epochs = 1
patience = 1
"""


def _build(write_recipe, tiny_recipe_text, out, steps: int):
    from nnship.api import build

    recipe = write_recipe(tiny_recipe_text + SCHEDULE.format(steps=steps), f"steps{steps}.toml")
    return build(recipe, output_dir=out)


@pytest.mark.slow
def test_build_prunes_and_distills_every_step(write_recipe, tiny_recipe_text, tmp_path):
    three = _build(write_recipe, tiny_recipe_text, tmp_path / "three", 3)
    phases = [f"{kind} {k}/3" for k in (1, 2, 3) for kind in ("prune", "distill")]
    assert [s for s in three.stages if s.startswith(("prune", "distill"))] == phases
    assert all(three.stages[p] == "ran" for p in phases)

    info = three.report.extra["build"]["compress"]
    assert [s["step"] for s in info["steps"]] == [1, 2, 3]
    assert all(s["prune"] and s["distill"] for s in info["steps"])
    sizes = [sum(g["channels_after"] for g in s["prune"]["groups"]) for s in info["steps"]]
    assert sizes[0] > sizes[1] > sizes[2]  # each step removes more channels
    assert info["prune"]["params_before"] == info["steps"][0]["prune"]["params_before"]
    assert info["prune"]["params_after"] == info["steps"][2]["prune"]["params_after"]
    notes = "\n".join(three.report.notes)
    assert all(f"step {k}/3" in notes for k in (1, 2, 3)), notes

    one = _build(write_recipe, tiny_recipe_text, tmp_path / "one", 1)
    assert one.stages["prune"] == "ran" and one.stages["distill"] == "ran"
    assert "steps" not in one.report.extra["build"]["compress"]
    onnx = "export/model.fp32.onnx"
    assert sha256_file(tmp_path / "one" / onnx) != sha256_file(tmp_path / "three" / onnx)


@pytest.mark.slow
def test_a_rebuild_reuses_every_step(write_recipe, tiny_recipe_text, tmp_path):
    first = _build(write_recipe, tiny_recipe_text, tmp_path / "b", 2)
    again = _build(write_recipe, tiny_recipe_text, tmp_path / "b", 2)
    phases = ["prune 1/2", "distill 1/2", "prune 2/2", "distill 2/2"]
    assert [first.stages[p] for p in phases] == ["ran"] * 4
    assert [again.stages[p] for p in phases] == ["reused"] * 4
    assert again.report.extra["build"]["compress"] == first.report.extra["build"]["compress"]
    onnx = tmp_path / "b" / "export" / "model.fp32.onnx"
    assert again.stages["export"] == "reused" and onnx.is_file()
