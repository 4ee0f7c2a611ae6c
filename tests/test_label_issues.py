"""Label issues: K-fold out-of-sample probabilities find deliberately flipped labels, deterministically."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from curation.label_issues import LabelIssueError, find_label_issues, out_of_sample_probs

LABELS = ["left", "right", "top"]
MEDIA = {"size": 16, "channels": 1}
# batch 4: enough BatchNorm updates per epoch on ~34 training images for eval-mode statistics to settle
TRAIN = {"epochs": 15, "batch_size": 4, "lr": 0.003, "weight_decay": 1e-4, "patience": 5, "class_weighting": True}
PER_CLASS = 20
TRUE_CLASS = {"img_03": "left", "img_22": "right", "img_41": "top"}
FLIPPED = {"img_03": "right", "img_22": "top", "img_41": "left"}  # the labels they are given instead
SEED = 11


def _write_images(folder):
    """Three classes of 16x16 grey PNGs (bright left, right or top half, in noise); three labels flipped."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(3 * PER_CLASS):
        k = i // PER_CLASS
        pixels = rng.uniform(0.0, 0.3, size=(16, 16))
        region = [(slice(None), slice(0, 8)), (slice(None), slice(8, 16)), (slice(0, 8), slice(None))][k]
        pixels[region] += rng.uniform(0.5, 0.7)
        sid = f"img_{i:02d}"
        path = folder / f"{sid}.png"
        Image.fromarray((np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8)).save(path)
        rows.append({"id": sid, "path": str(path), "label": FLIPPED.get(sid, LABELS[k]), "split": "train"})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    df = _write_images(tmp_path_factory.mktemp("blobs"))
    probs = out_of_sample_probs(df, LABELS, "image", MEDIA, TRAIN, SEED, folds=3, progress=False)
    return df, probs


def test_flipped_labels_are_found(data):
    df, probs = data
    table = find_label_issues(df, probs, LABELS)
    flagged = table[table["is_issue"]].set_index("id")
    assert set(flagged.index) == set(FLIPPED)
    assert flagged["suggested"].to_dict() == TRUE_CLASS
    assert table["id"].head(3).tolist() == sorted(FLIPPED, key=lambda i: flagged.loc[i, "label_quality"])
    assert table["label_quality"].is_monotonic_increasing and table["label_quality"].between(0, 1).all()
    assert flagged.loc["img_03", "reason"].startswith("labelled 'right' but out-of-sample model gives 'left' p=")


def test_every_row_gets_probabilities_from_a_model_that_never_saw_it(data):
    df, probs = data
    assert probs.shape == (len(df), len(LABELS)) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_same_seed_gives_identical_probabilities(data):
    df, probs = data
    again = out_of_sample_probs(df, LABELS, "image", MEDIA, TRAIN, SEED, folds=3, progress=False)
    assert np.array_equal(probs, again)


def test_label_with_too_few_samples_for_the_folds_is_named(data):
    df, _ = data
    few = pd.concat([df[df["label"] != "top"], df[df["label"] == "top"].head(2)])
    with pytest.raises(LabelIssueError, match=r"label\(s\) 'top' \(2\) have fewer samples than the 3 folds"):
        out_of_sample_probs(few, LABELS, "image", MEDIA, TRAIN, SEED, folds=3, progress=False)


def test_label_outside_the_label_set_is_named(data):
    df, probs = data
    with pytest.raises(LabelIssueError, match=r"label\(s\) \['top'\] are not in the label set"):
        find_label_issues(df, probs[:, :2] / probs[:, :2].sum(axis=1, keepdims=True), LABELS[:2])


def test_unknown_filter_is_refused(data):
    df, probs = data
    with pytest.raises(LabelIssueError, match="filter_by 'magic'"):
        find_label_issues(df, probs, LABELS, filter_by="magic")
