import pytest

from nnship.core.errors import QuantizationError
from nnship.quantize import QuantizeConfig, get_profile, make_config


def test_defaults_are_int8_onnxruntime_per_channel():
    cfg = QuantizeConfig()
    assert cfg.precisions == ["int8"]
    assert cfg.profile == "onnxruntime"
    assert cfg.per_channel is True
    assert not cfg.has_budget


def test_unknown_method_names_the_field():
    with pytest.raises(QuantizationError, match=r"method.*'kl'"):
        make_config(method="kl")


def test_unknown_profile_names_the_field():
    with pytest.raises(QuantizationError, match=r"profile.*'coreml'"):
        make_config(profile="coreml")
    with pytest.raises(QuantizationError, match="coreml"):
        get_profile("coreml")


def test_unknown_key_is_rejected():
    with pytest.raises(QuantizationError, match="bogus"):
        make_config({"bogus": 1})


def test_bad_regex_is_rejected():
    with pytest.raises(QuantizationError, match="regular expression"):
        make_config(exclude={"regex": ["("]})


def test_exclusion_reasons():
    cfg = make_config(exclude={"names": ["a"], "op_types": ["Gemm"], "regex": ["^blk"]})
    assert cfg.exclude.reason_for("a", "Conv") == "excluded by user (name)"
    assert cfg.exclude.reason_for("x", "Gemm") == "excluded by user (op type Gemm)"
    assert "regex" in cfg.exclude.reason_for("blk1", "Conv")
    assert cfg.exclude.reason_for("x", "Conv") is None


def test_for_precision_and_budget():
    cfg = make_config(precisions=["int8", "fp16"], min_cosine=0.99)
    assert cfg.for_precision("fp16").precisions == ["fp16"]
    assert cfg.has_budget


def test_tensorrt_profile_is_symmetric_int8():
    trt = get_profile("tensorrt")
    assert trt.activation_type == "int8" and trt.activation_symmetric
    assert get_profile("onnxruntime").activation_type == "uint8"
