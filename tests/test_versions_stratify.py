"""`build.stratify`: the budget paid evenly across the range of a parameter the policies drew."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.versions import Stratify, build_version, within_budget

SNR = Stratify("BackgroundNoise", "snr_db", 4)


def _noise(snr_db: float | None) -> str:
    """Recorded parameters of a candidate whose BackgroundNoise drew `snr_db` (None: it did not apply)."""
    params = {"applied": False} if snr_db is None else {"applied": True, "snr_db": snr_db}
    return json.dumps([{"name": "BackgroundNoise", "params": params}, {"name": "Gain", "params": {"applied": False}}])


def _telephone() -> str:
    return json.dumps([{"name": "Telephone", "params": {"applied": True}}])


def _judged(snrs: list[float | None], verdicts: list[str], target: str = "machine") -> pd.DataFrame:
    """Candidates of one target, weakness rising with the row (hardest-first takes the last rows first)."""
    return pd.DataFrame(
        {
            "id": [f"{target}{k}" for k in range(len(snrs))],
            "target_slice": target,
            "verdict": verdicts,
            "weakness": [k / 100 for k in range(len(snrs))],
            "augment_params": [_noise(s) for s in snrs],
        }
    )


def test_from_params_is_off_without_an_entry():
    assert Stratify.from_params(None) is None


def test_from_params_reads_transform_param_and_bins():
    spec = {"transform": "BackgroundNoise", "param": "snr_db", "bins": 3}
    assert Stratify.from_params(spec) == Stratify("BackgroundNoise", "snr_db", 3)
    assert Stratify.from_params({"transform": "BackgroundNoise", "param": "snr_db"}).bins == 4


def test_from_params_refuses_a_list():
    with pytest.raises(ValueError, match=r"build\.stratify must be a mapping"):
        Stratify.from_params(["BackgroundNoise", "snr_db"])


def test_from_params_refuses_a_missing_param():
    with pytest.raises(ValueError, match=r"build\.stratify\.param must be a non-empty string, got None"):
        Stratify.from_params({"transform": "BackgroundNoise"})


def test_from_params_refuses_an_unknown_key():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['bin'\]; it takes transform, param and bins"):
        Stratify.from_params({"transform": "BackgroundNoise", "param": "snr_db", "bin": 4})


@pytest.mark.parametrize("bins", [0, 2.5, True, "4"])
def test_bins_that_are_not_a_positive_whole_number_are_refused(bins):
    with pytest.raises(ValueError, match=r"build\.stratify\.bins must be a whole number >= 1"):
        Stratify.from_params({"transform": "BackgroundNoise", "param": "snr_db", "bins": bins})
    with pytest.raises(ValueError, match=r"build\.stratify\.bins must be a whole number >= 1"):
        Stratify("BackgroundNoise", "snr_db", bins)


def test_values_read_the_first_applied_record_and_nan_where_it_did_not_apply():
    judged = pd.DataFrame({"id": ["a", "b", "c"], "augment_params": [_noise(-2.5), _noise(None), _telephone()]})
    values = SNR.values(judged)
    assert values.iloc[0] == -2.5 and values.iloc[1:].isna().all()


def test_values_need_the_recorded_parameters():
    with pytest.raises(ValueError, match="lack column augment_params"):
        SNR.values(pd.DataFrame({"id": ["a"]}))


def test_values_name_a_candidate_without_a_record():
    with pytest.raises(ValueError, match=r"candidate b has no recorded parameters \(augment_params\)"):
        SNR.values(pd.DataFrame({"id": ["a", "b"], "augment_params": [_noise(1.0), None]}))


def test_values_name_a_candidate_whose_parameter_is_not_a_number():
    text = json.dumps([{"name": "BackgroundNoise", "params": {"applied": True, "snr_db": "loud"}}])
    with pytest.raises(ValueError, match=r"candidate a: BackgroundNoise.snr_db is 'loud', not a finite number"):
        SNR.values(pd.DataFrame({"id": ["a"], "augment_params": [text]}))


def test_values_name_a_candidate_whose_parameter_is_not_finite():
    text = json.dumps([{"name": "BackgroundNoise", "params": {"applied": True, "snr_db": float("nan")}}])
    with pytest.raises(ValueError, match=r"candidate a: BackgroundNoise.snr_db is nan, not a finite number"):
        SNR.values(pd.DataFrame({"id": ["a"], "augment_params": [text]}))


@pytest.mark.parametrize("text", ["[{", '{"name": "BackgroundNoise"}', '[{"params": {}}]', '["BackgroundNoise"]'])
def test_values_name_a_candidate_whose_record_is_malformed(text):
    with pytest.raises(ValueError, match="candidate a: malformed augment_params"):
        SNR.values(pd.DataFrame({"id": ["a"], "augment_params": [text]}))


def test_values_name_an_applied_record_without_the_parameter():
    text = json.dumps([{"name": "BackgroundNoise", "params": {"applied": True}}])
    with pytest.raises(ValueError, match=r"candidate a: BackgroundNoise.snr_db is None"):
        SNR.values(pd.DataFrame({"id": ["a"], "augment_params": [text]}))


def test_values_refuse_a_transform_no_candidate_records():
    with pytest.raises(ValueError, match="no candidate's recorded parameters name transform 'BackgroundNoize'"):
        Stratify("BackgroundNoize", "snr_db").values(pd.DataFrame({"id": ["a"], "augment_params": [_noise(1.0)]}))


def test_strata_are_equal_count_bins_by_value_ties_by_id_and_one_more_without_a_value():
    values = pd.Series([5.0, np.nan, 1.0, 3.0, 3.0, 0.0, 7.0, 2.0, 4.0])
    ids = pd.Series(["e", "n", "b", "d2", "d1", "a", "g", "c", "f"])
    # by value, ties by id: a 0, b 1, c 2, d1 3, d2 3, e 5, f 4 -> a b c d1 d2 f e g; 8 ranks in bins of 2
    assert SNR.strata(values, ids).tolist() == [3, 4, 0, 2, 1, 0, 3, 1, 2]


def test_strata_of_a_single_value_is_the_first_bin():
    assert SNR.strata(pd.Series([2.0, np.nan]), pd.Series(["a", "b"])).tolist() == [0, 4]


def test_quotas_are_equal_per_bin_and_by_count_for_the_stratum_without_a_value():
    # 8 drawn (2 per bin), 2 without: that stratum weighs 2 / (8 / 4) = 1 bin; 10 shared as 2 each
    assert SNR.quotas(np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]), 10) == {0: 2, 1: 2, 2: 2, 3: 2, 4: 2}
    # largest remainders, ties by stratum: 5 over four bins -> the first bin gets the extra one
    assert SNR.quotas(np.array([0, 1, 2, 3]), 5) == {0: 2, 1: 1, 2: 1, 3: 1}
    assert SNR.quotas(np.array([4, 4, 4]), 3) == {4: 3}


def test_stratified_budget_pays_each_bin_its_share_before_filling_from_the_rest():
    """Eight machine candidates at SNRs 0..7 dB in four bins of two; the checklist accepted 1 and 4..7. Hardest
    first (weakness rises with SNR) would take 7, 6, 5. Three bins get one sample each (largest remainders,
    ties by bin): 1 from bin 0, none from bin 1 (nothing accepted), 5 from bin 2; what bin 1 lacked comes from
    the rest, hardest first: 7. Telephone has no SNR and is paid in pick order."""
    machine = _judged(list(range(8)), ["reject", "accept", "reject", "review", *["accept"] * 4])
    tel = pd.DataFrame(
        {
            "id": ["t0", "t1", "t2"],
            "target_slice": "tel",
            "verdict": ["accept", "accept", "reject"],
            "weakness": [0.1, 0.9, 0.5],
            "augment_params": [_telephone()] * 3,
        }
    )
    judged = pd.concat([machine, tel], ignore_index=True)
    paid = within_budget(judged, {"machine": 3, "tel": 1}, "hardest", seed=0, stratify=SNR)
    assert sorted(judged.loc[paid, "id"]) == ["machine1", "machine5", "machine7", "t1"]
    unstratified = within_budget(judged, {"machine": 3, "tel": 1}, "hardest", seed=0)
    assert sorted(judged.loc[unstratified, "id"]) == ["machine5", "machine6", "machine7", "t1"]


def test_stratified_budget_pays_candidates_the_transform_skipped_by_their_count():
    """Four drawn (one per bin) and four the transform skipped: one more stratum of weight 4 / (4 / 4) = 4. In
    one bin, the skipped weigh 4 / (4 / 1) = 1: a budget of 4 pays two of each, hardest first."""
    judged = _judged([0.0, 1.0, 2.0, 3.0, None, None, None, None], ["accept"] * 8)
    paid = within_budget(judged, {"machine": 6}, "hardest", stratify=SNR)
    # weights 1, 1, 1, 1, 4 of 6: 0.75 per bin (the first three win the remainders) and 3 of the skipped
    assert sorted(judged.loc[paid, "id"]) == ["machine0", "machine1", "machine2", "machine5", "machine6", "machine7"]
    paid = within_budget(judged, {"machine": 4}, "hardest", stratify=Stratify("BackgroundNoise", "snr_db", 1))
    assert sorted(judged.loc[paid, "id"]) == ["machine2", "machine3", "machine6", "machine7"]


@settings(max_examples=40, deadline=None)
@given(
    snrs=st.lists(st.one_of(st.none(), st.floats(-10, 20)), min_size=1, max_size=30),
    accept=st.lists(st.booleans(), min_size=31, max_size=31),
    shares=st.tuples(st.integers(0, 40), st.integers(0, 40)),
    order=st.randoms(use_true_random=False),
)
def test_stratified_budget_pays_each_target_its_share_and_does_not_depend_on_row_order(snrs, accept, shares, order):
    if all(s is None for s in snrs):
        snrs = [*snrs, 0.0]
    verdicts = ["accept" if a else "reject" for a in accept[: len(snrs)]]
    judged = pd.concat([_judged(snrs, verdicts), _judged(snrs[::-1], verdicts[::-1], "human")], ignore_index=True)
    allocation = dict(zip(("machine", "human"), shares, strict=True))
    paid = within_budget(judged, allocation, "random", seed=3, stratify=SNR)
    accepted = judged[judged["verdict"] == "accept"]["target_slice"].value_counts()
    for target, share in allocation.items():
        assert int(paid[judged["target_slice"] == target].sum()) == min(share, accepted.get(target, 0))
    assert (judged.loc[paid, "verdict"] == "accept").all()
    shuffled = judged.iloc[order.sample(range(len(judged)), len(judged))]
    again = within_budget(shuffled, allocation, "random", seed=3, stratify=SNR)
    assert sorted(shuffled.loc[again, "id"]) == sorted(judged.loc[paid, "id"])


def test_build_stratifies_by_the_candidates_records_and_shows_the_mix_on_the_card():
    snrs = [float(k) for k in range(8)]
    cands = pd.DataFrame(
        {
            "id": [f"m{k}" for k in range(8)],
            "path": [f"m{k}.wav" for k in range(8)],
            "label": ["0", "1"] * 4,
            "split": "train",
            "sha256": [f"h{k}" for k in range(8)],
            "target_slice": "machine",
            "source_id": "s1",
            "augment_params": [_noise(s) for s in snrs],
        }
    )
    judged = cands[["id", "target_slice"]].assign(
        verdict=["reject", "accept", "reject", "reject", *["accept"] * 4], weakness=[k / 10 for k in range(8)]
    )
    parent = pd.DataFrame(
        {"id": ["s1", "s2"], "path": ["a", "b"], "label": ["0", "1"], "split": "train", "sha256": ["x", "y"]}
    )
    decisions = pd.DataFrame(columns=["id", "decision", "label", "labeler", "note", "path"])
    version, card = build_version(parent, cands, judged, decisions, ["0", "1"], allocation={"machine": 3}, stratify=SNR)
    assert sorted(set(version["id"]) - {"s1", "s2"}) == ["m1", "m5", "m7"]
    assert card["stratified"] == {
        "transform": "BackgroundNoise",
        "param": "snr_db",
        "bins": 4,
        "median_drawn": {"machine": 3.5},
        "median_paid": {"machine": 5.0},
    }
    _, plain = build_version(parent, cands, judged, decisions, ["0", "1"], allocation={"machine": 3})
    assert plain["stratified"] is None


def test_stratified_budget_pays_nothing_to_a_target_without_an_allocation_and_keeps_the_callers_index():
    judged = pd.concat([_judged([1.0, 2.0], ["accept"] * 2), _judged([3.0, 4.0], ["accept"] * 2, "human")])
    judged.index = ["x", "x", "y", "z"]  # repeated labels: picks go by position
    paid = within_budget(judged, {"machine": 1}, "hardest", stratify=SNR)
    # machine's two values fall in bins 0 and 3; the one sample goes to bin 0 (remainder ties by bin)
    assert paid.index.tolist() == ["x", "x", "y", "z"] and paid.tolist() == [True, False, False, False]
