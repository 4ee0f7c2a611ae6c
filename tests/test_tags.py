"""Error-analysis tags: from findings, labeler notes, metadata and user functions."""

import os.path
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation.slices import TAG_PREFIX, tag_names
from curation.tags import (
    TagError,
    add_tags,
    finding_tags,
    function_tags,
    metadata_tags,
    note_hashtags,
    note_tags,
    resolve_function,
)

REPO = Path(__file__).resolve().parents[1]
quiet = resolve_function("examples/tag_functions.py:quiet", root=REPO)  # as params.yaml registers it
low_ink = resolve_function("examples/tag_functions.py:low_ink", root=REPO)


def _frame():
    """Two originals (a, b) evaluated clean and under a stress test, plus a clean-only sample c."""
    return pd.DataFrame(
        {
            "id": ["a", "a@noise", "b", "b@noise", "c"],
            "path": ["a.wav", "a_n.wav", "b.wav", "b_n.wav", "c.wav"],
            "label": ["0", "0", "1", "1", "0"],
            "condition": ["clean", "noise", "clean", "noise", "clean"],
            "source_id": ["a", "a", "b", "b", "c"],
            "correct": [True, False, True, True, False],
        },
        index=[10, 11, 12, 13, 14],
    )


def _findings(rows):
    return pd.DataFrame(rows, columns=["id", "path", "check", "severity", "reason", "score", "related", "kind"])


def _decisions(rows):
    return pd.DataFrame(rows, columns=["id", "decision", "label", "labeler", "note"])


def _col(df, name):
    return df[TAG_PREFIX + name].tolist()


FINDINGS = _findings(
    [
        ["a", "a.wav", "near_duplicate", "warning", "", 0.5, "b", "sample"],
        ["b", "b.wav", "near_duplicate", "warning", "", 0.5, "a", "sample"],
        ["b", "b.wav", "clipping", "error", "", 0.0, "", "sample"],
        ["c", "c.wav", "silence", "info", "", 0.0, "", "sample"],
        ["c", "n.wav", "dark", "warning", "", 0.0, "", "noise"],
    ]
)


def test_findings_tag_every_row_made_from_the_sample():
    tags = finding_tags(_frame(), FINDINGS)
    assert list(tags.columns) == ["tag:clipping", "tag:near_duplicate", "tag:silence"]  # noise rows ignored
    assert list(tags.index) == [10, 11, 12, 13, 14]
    assert _col(tags, "near_duplicate") == [True, True, True, True, False]
    assert _col(tags, "clipping") == [False, False, True, True, False]
    assert _col(tags, "silence") == [False, False, False, False, True]
    assert all(dtype == np.dtype(bool) for dtype in tags.dtypes)


def test_findings_match_id_when_there_is_no_source_id():
    frame = _frame().drop(columns="source_id")
    assert _col(finding_tags(frame, FINDINGS), "near_duplicate") == [True, False, True, False, False]


def test_findings_restricted_to_checks_and_severities():
    tags = finding_tags(_frame(), FINDINGS, checks=["clipping", "dark"])
    assert list(tags.columns) == ["tag:clipping", "tag:dark"]  # a named check without findings: all False
    assert _col(tags, "dark") == [False] * 5
    tags = finding_tags(_frame(), FINDINGS, severities=["warning"])
    assert list(tags.columns) == ["tag:near_duplicate"]


def test_hashtags_in_notes():
    assert note_hashtags("#Mumbled, strong #accent; see #mumbled and C# take#2 ## heading") == ["mumbled", "accent"]
    assert note_hashtags("#too-fast #x_1") == ["too-fast", "x_1"]


def test_note_tags_match_id_or_source_id():
    decisions = _decisions(
        [
            ["a", "accept", "", "ann", "#Mumbled #accent"],
            ["b@noise", "unsure", "", "bob", "hard to hear #mumbled"],
            ["c", "accept", "", "ann", np.nan],
        ]
    )
    tags = note_tags(_frame(), decisions)
    assert list(tags.columns) == ["tag:accent", "tag:mumbled"]
    assert _col(tags, "mumbled") == [True, True, False, True, False]
    assert _col(tags, "accent") == [True, True, False, False, False]


def test_note_with_disallowed_hashtag_is_refused():
    with pytest.raises(TagError, match=r"decision 'a'.*'café'"):
        note_tags(_frame(), _decisions([["a", "accept", "", "ann", "#café"]]))


def test_metadata_boolean_like_values():
    frame = _frame().assign(
        Noisy=[True, False, np.nan, True, False],
        child=[1, 0, 0, 1.0, np.nan],
        outdoor=["yes", "No", "TRUE", "false", ""],
        flag=pd.array([True, None, False, True, None], dtype="boolean"),
    )
    tags = metadata_tags(frame, ["Noisy", "child", "outdoor", "flag"])
    assert list(tags.columns) == ["tag:child", "tag:flag", "tag:noisy", "tag:outdoor"]
    assert _col(tags, "noisy") == [True, False, False, True, False]
    assert _col(tags, "child") == [True, False, False, True, False]
    assert _col(tags, "outdoor") == [True, False, True, False, False]
    assert _col(tags, "flag") == [True, False, False, True, False]


@pytest.mark.parametrize("bad", ["maybe", 2, 0.5])
def test_metadata_non_boolean_value_is_refused(bad):
    frame = _frame().assign(noisy=[True, False, bad, True, False])
    with pytest.raises(TagError, match=rf"column 'noisy'.*value {bad!r}"):
        metadata_tags(frame, ["noisy"])


def test_metadata_unknown_column_is_refused():
    with pytest.raises(TagError, match="column 'nope' is not in the data"):
        metadata_tags(_frame(), ["nope"])


def _write_module(tmp_path, body):
    path = tmp_path / "my_tags.py"
    path.write_text(body)
    return path


FUNCTIONS = """
def loud(sample):
    return bool(sample["x"].max() > 0.5)

def clean(sample):
    return sample["condition"] == "clean"

def number(sample):
    return 1

def boom(sample):
    raise RuntimeError("kaput")

NOT_CALLABLE = 3
"""


def _loader(calls):
    arrays = {"a.wav": 0.9, "a_n.wav": 0.1, "b.wav": 0.2, "b_n.wav": 0.7, "c.wav": 0.0}

    def load(path):
        calls.append(path)
        return np.full(4, arrays[path], dtype=np.float32)

    return load


def test_functions_from_a_path_spec_load_each_row_once(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    calls = []
    functions = {"loud": f"{path}:loud", "clean": f"{path}:clean"}
    tags = function_tags(_frame(), functions, _loader(calls))
    assert _col(tags, "loud") == [True, False, False, True, False]
    assert _col(tags, "clean") == [True, False, True, False, True]
    assert calls == ["a.wav", "a_n.wav", "b.wav", "b_n.wav", "c.wav"]


def test_relative_path_spec_resolved_against_root(tmp_path):
    _write_module(tmp_path, FUNCTIONS)
    fn = resolve_function("my_tags.py:clean", root=tmp_path)
    assert fn({"condition": "clean"}) is True


def test_module_spec():
    assert resolve_function("os.path:join") is os.path.join


def test_no_functions_loads_nothing():
    def load(path):
        raise AssertionError("must not load")

    assert function_tags(_frame(), {}, load).shape == (5, 0)
    assert list(add_tags(_frame(), functions={}, load=load).columns) == list(_frame().columns)


def test_functions_need_a_loader(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    with pytest.raises(TagError, match="no `load`"):
        function_tags(_frame(), {"loud": f"{path}:loud"}, None)


def test_function_returning_non_bool_is_refused(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    with pytest.raises(TagError, match=r"tag 'n' \(.*my_tags.py:number\) returned int 1 on sample 'a'"):
        function_tags(_frame(), {"n": f"{path}:number"}, _loader([]))


def test_function_exception_names_tag_spec_and_sample(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    with pytest.raises(TagError, match=r"tag 'b' \(.*my_tags.py:boom\) failed on sample 'a'.*kaput") as info:
        function_tags(_frame(), {"b": f"{path}:boom"}, _loader([]))
    assert isinstance(info.value.__cause__, RuntimeError)


def test_functions_get_a_read_only_array(tmp_path):
    path = _write_module(tmp_path, "def scale(sample):\n    sample['x'] *= 2\n    return True\n")
    with pytest.raises(TagError, match=r"failed on sample 'a'.*read-only"):
        function_tags(_frame(), {"s": f"{path}:scale"}, _loader([]))


def test_spec_without_colon_is_refused():
    with pytest.raises(TagError, match="expected 'module:function'"):
        resolve_function("os.path.join")


def test_spec_with_empty_function_is_refused():
    with pytest.raises(TagError, match="expected 'module:function'"):
        resolve_function("os.path:")


def test_spec_module_not_found():
    with pytest.raises(TagError, match="module not found") as info:
        resolve_function("no_such_package_xyz.mod:fn")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_spec_file_not_found(tmp_path):
    with pytest.raises(TagError, match="no such file"):
        resolve_function(f"{tmp_path}/missing.py:fn")


def test_spec_file_that_fails_to_import(tmp_path):
    path = _write_module(tmp_path, "raise ImportError('needs torch 9')\n")
    with pytest.raises(TagError, match=r"importing .* failed.*needs torch 9"):
        resolve_function(f"{path}:fn")


def test_spec_attribute_missing(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    with pytest.raises(TagError, match="has no attribute 'nope'"):
        resolve_function(f"{path}:nope")


def test_spec_not_callable(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    with pytest.raises(TagError, match="'NOT_CALLABLE' is a int, not callable"):
        resolve_function(f"{path}:NOT_CALLABLE")


def test_add_tags_merges_sources_with_or_and_sorts(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    frame = _frame().assign(clipping=["no", "no", "no", "no", "yes"])
    decisions = _decisions([["a@noise", "accept", "", "ann", "#clipping #accent"]])
    out = add_tags(
        frame,
        findings=FINDINGS,
        decisions=decisions,
        metadata=["clipping"],
        functions={"Loud": f"{path}:loud"},
        load=_loader([]),
    )
    assert list(out.columns) == [
        *frame.columns,
        "tag:accent",
        "tag:clipping",
        "tag:loud",
        "tag:near_duplicate",
        "tag:silence",
    ]
    assert list(out.index) == list(frame.index)
    assert _col(out, "clipping") == [False, True, True, True, True]  # notes | findings | metadata
    assert _col(out, "loud") == [True, False, False, True, False]
    assert tag_names(out) == ["accent", "clipping", "loud", "near_duplicate", "silence"]
    assert tag_names(frame) == []


def test_invalid_tag_name_is_refused(tmp_path):
    path = _write_module(tmp_path, FUNCTIONS)
    with pytest.raises(TagError, match=r"tag name 'very loud' is not allowed"):
        add_tags(_frame(), functions={"very loud": f"{path}:loud"}, load=_loader([]))
    with pytest.raises(TagError, match=r"tag name 'is:noisy' is not allowed"):
        add_tags(_frame().assign(**{"is:noisy": False}), metadata=["is:noisy"])


def test_existing_tag_column_clashes():
    frame = _frame().assign(**{"tag:silence": False})
    with pytest.raises(TagError, match=r"already has column\(s\) \['tag:silence'\]"):
        add_tags(frame, findings=FINDINGS)


def test_example_quiet():
    assert quiet({"x": np.full(800, 0.01, dtype=np.float32)}) is True  # -40 dBFS
    assert quiet({"x": np.full(800, 0.1, dtype=np.float32)}) is False  # -20 dBFS
    assert quiet({"x": np.zeros(800, dtype=np.float32)}) is True


def test_example_low_ink():
    page = np.full((32, 32), 255, dtype=np.uint8)
    assert low_ink({"x": page}) is True
    page[8:24, 14:18] = 0  # a stroke covering 1/16 of the page
    assert low_ink({"x": page}) is False
    assert low_ink({"x": np.repeat(page[:, :, None], 3, axis=2)}) is False
    assert low_ink({"x": 255 - page}) is False  # light on dark
