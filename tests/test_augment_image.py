"""augment.image and the image side of augment.pipeline: seeds, replay, records, shapes, errors."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from augment.image import MAX_RECORDED_VALUES, ImagePipeline, json_safe
from augment.pipeline import build_pipeline

PARAMS = yaml.safe_load((Path(__file__).resolve().parents[1] / "params.yaml").read_text())

DARK = [
    {
        "name": "RandomBrightnessContrast",
        "brightness_limit": [-0.65, -0.35],
        "contrast_limit": [-0.6, -0.3],
        "p": 1.0,
    },
    {"name": "GaussNoise", "std_range": [0.0, 0.03], "p": 0.5},
]
GEOMETRIC = [
    {"name": "Affine", "rotate": [-15, 15], "translate_percent": [-0.1, 0.1], "p": 0.8},
    {"name": "GaussianBlur", "blur_limit": [3, 7], "sigma_limit": [0.8, 2.2], "p": 0.5},
]


def digit_like(shape: tuple[int, ...] = (32, 32), seed: int = 0) -> np.ndarray:
    """A bright stroke on a dark, slightly noisy background."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 30, shape, dtype=np.uint8)
    image[6:26, 14:18] = 220
    image[6:10, 10:22] = 200
    return image


GREY = digit_like()
RGB = digit_like((24, 20, 3), seed=1)


@pytest.mark.parametrize("image", [GREY, RGB], ids=["grey", "rgb"])
@pytest.mark.parametrize("spec", [DARK, GEOMETRIC], ids=["dark", "geometric"])
def test_same_seed_same_bytes_different_seed_different_output(image, spec):
    pipeline = build_pipeline("image", spec)
    first, records = pipeline(image, 42)
    again, records_again = build_pipeline("image", spec)(image, 42)
    assert first.shape == image.shape and first.dtype == np.uint8
    assert first.tobytes() == again.tobytes() and records == records_again
    assert first.tobytes() != pipeline(image, 43)[0].tobytes()


@pytest.mark.parametrize("seed", range(6))
def test_replay_is_bit_identical(seed):
    pipeline = build_pipeline("image", DARK + GEOMETRIC)
    out, records = pipeline(GREY, seed)
    pipeline(GREY, seed + 100)  # state left by another call must not matter
    assert pipeline.replay(GREY, json.loads(json.dumps(records))).tobytes() == out.tobytes()


def test_records_are_json_with_seed_flag_and_lists():
    pipeline = build_pipeline("image", DARK)
    runs = [pipeline(GREY, seed)[1] for seed in range(30)]
    for records in runs:
        assert json.loads(json.dumps(records)) == records
        assert [r["name"] for r in records] == ["RandomBrightnessContrast", "GaussNoise"]
    brightness = runs[0][0]
    assert brightness["seed"] == 0 and brightness["params"]["applied"] is True
    assert brightness["params"]["shape"] == [32, 32]  # tuples become lists
    assert isinstance(brightness["params"]["alpha"], float)
    assert {r[1]["params"]["applied"] for r in runs} == {True, False}  # GaussNoise p=0.5
    assert all(r[1]["params"] == {"applied": False} for r in runs if not r[1]["params"]["applied"])


def test_large_arrays_are_summarized_small_ones_kept():
    params = json_safe({"kernel": np.ones(5, np.float32), "noise": np.arange(MAX_RECORDED_VALUES + 1.0)})
    assert params["kernel"] == [1.0] * 5
    assert params["noise"] == {"shape": [65], "dtype": "float64", "min": 0.0, "max": 64.0, "mean": 32.0}
    with pytest.raises(ValueError, match=r"params.f: a object cannot be recorded"):
        json_safe({"f": object()})


def test_transforms_draw_independently_of_each_other():
    """albumentations' set_random_seed gives every child the same seed: their draws would move together."""
    twice = [
        {"name": "GaussNoise", "std_range": [0.05, 0.1], "p": 0.5},
        {"name": "GaussNoise", "std_range": [0.05, 0.1], "p": 0.5},
    ]
    pipeline = build_pipeline("image", twice)
    flags = [tuple(r["params"]["applied"] for r in pipeline(GREY, seed)[1]) for seed in range(40)]
    assert (True, False) in flags and (False, True) in flags
    both = next(seed for seed, f in enumerate(flags) if f == (True, True))
    first, second = (r["params"]["noise_map"] for r in pipeline(GREY, both)[1])
    assert first != second


def test_every_image_condition_and_policy_in_params_runs():
    datasets = [d for d in PARAMS["datasets"].values() if d["modality"] == "image"]
    specs = [spec for d in datasets for spec in (*d["conditions"].values(), *d["augment"]["policies"].values())]
    assert specs
    for spec in specs:
        pipeline = build_pipeline("image", spec)
        out, records = pipeline(GREY, 2026)
        assert out.shape == GREY.shape and out.dtype == np.uint8
        assert pipeline.replay(GREY, records).tobytes() == out.tobytes()


def test_conditions_change_the_image_as_named():
    dark = build_pipeline("image", [DARK[0]])(GREY, 1)[0]
    blurred = build_pipeline("image", [GEOMETRIC[1] | {"p": 1.0}])(GREY, 1)[0]
    assert dark.mean() < GREY.mean()
    assert np.abs(np.diff(blurred.astype(int), axis=1)).mean() < np.abs(np.diff(GREY.astype(int), axis=1)).mean()


def test_to_dict_returns_the_spec_and_rebuilds_the_pipeline():
    pipeline = build_pipeline("image", DARK)
    assert pipeline.to_dict() == DARK
    rebuilt = build_pipeline("image", pipeline.to_dict())
    assert rebuilt(RGB, 5)[0].tobytes() == pipeline(RGB, 5)[0].tobytes()


def test_missing_p_takes_the_albumentations_default():
    pipeline = build_pipeline("image", [{"name": "HorizontalFlip"}])
    assert pipeline.transforms[0].p == 0.5
    assert pipeline.to_dict() == [{"name": "HorizontalFlip"}]


def test_global_random_state_is_never_touched():
    before = random.getstate(), np.random.get_state()
    build_pipeline("image", DARK + GEOMETRIC)(RGB, 9)
    after = random.getstate(), np.random.get_state()
    assert before[0] == after[0]
    assert all(np.array_equal(a, b) for a, b in zip(before[1], after[1], strict=True))


def test_a_channel_axis_added_to_grayscale_is_dropped():
    restored = ImagePipeline._same_shape(GREY[..., None], GREY.shape)
    assert restored.shape == GREY.shape and np.array_equal(restored, GREY)


PROPERTY_PIPELINE = build_pipeline("image", DARK + GEOMETRIC)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=-(2**63), max_value=2**64), rgb=st.booleans())
def test_any_seed_keeps_shape_and_dtype(seed, rgb):
    image = RGB if rgb else GREY
    out, records = PROPERTY_PIPELINE(image, seed)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert len(records) == len(DARK + GEOMETRIC)


# --- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ([{"name": "Foo"}], r"unknown image transform 'Foo'; see the albumentations transform list"),
        ([{"name": "GausianBlur"}], r"unknown image transform 'GausianBlur'; did you mean GaussianBlur"),
        ([{"name": "Compose", "transforms": []}], "unknown image transform 'Compose'"),
        ([{"name": "GaussianBlur", "blur_limt": [3, 5]}], "GaussianBlur: invalid arguments: .*'blur_limt'"),
        ([{"name": "MedianBlur", "blur_limt": 5}], "MedianBlur: invalid arguments: .*'blur_limt'"),
        ([{"name": "GaussianBlur", "p": 2}], r"(?s)GaussianBlur: invalid .*less than or equal to 1"),
        ([{"name": "GaussianBlur", "strict": False}], "GaussianBlur: 'strict' is set by the pipeline"),
        ([{"name": 3}], "spec entry 0 must be a mapping with a string 'name'"),
    ],
)
def test_bad_specs_raise_value_errors_that_say_why(spec, reason):
    with pytest.raises(ValueError, match=reason):
        build_pipeline("image", spec)


def test_image_pipelines_take_no_audio_arguments():
    with pytest.raises(ValueError, match="image pipelines take no sample_rate or noise pool"):
        build_pipeline("image", DARK, sample_rate=8000)


def test_bad_images_and_shape_changes_are_rejected():
    pipeline = build_pipeline("image", DARK)
    with pytest.raises(ValueError, match="images must be uint8"):
        pipeline(GREY.astype(np.float32), 0)
    with pytest.raises(ValueError, match="HxW or HxWxC"):
        pipeline(GREY[0], 0)
    cropping = build_pipeline("image", [{"name": "RandomCrop", "height": 8, "width": 8, "p": 1.0}])
    with pytest.raises(ValueError, match=r"turned a \(32, 32\) uint8 image into \(8, 8\) uint8"):
        cropping(GREY, 0)


def test_foreign_records_are_rejected():
    pipeline = build_pipeline("image", DARK)
    _, records = pipeline(GREY, 0)
    with pytest.raises(ValueError, match="do not belong to this pipeline"):
        pipeline.replay(GREY, records[:1])
    with pytest.raises(ValueError, match="share one seed"):
        pipeline.replay(GREY, [records[0], {**records[1], "seed": 1}])
    with pytest.raises(ValueError, match="mapping with 'name' and 'seed'"):
        pipeline.replay(GREY, [{"name": "RandomBrightnessContrast"}, records[1]])
