"""The ablation benchmark's pure parts: the blind policy, the SNR floor of the stress test, the SNR-matched pick
and the report for a subset of arms."""

import json

import numpy as np
import pandas as pd

from benchmarks.ablation_fsdd import drawn_snr, report, snr_matched, untargeted_policy, with_snr_floor


def test_blind_policy_widens_ranges_pools_groups_and_counts_a_doubled_transform_once_per_policy():
    policies = {
        "condition=a": [
            {"name": "BackgroundNoise", "groups": ["machine"], "min_snr_db": 6, "max_snr_db": 15, "p": 0.5},
            {"name": "BackgroundNoise", "groups": ["machine"], "min_snr_db": -6, "max_snr_db": 6},
        ],
        "condition=b": [{"name": "BackgroundNoise", "groups": ["human"], "min_snr_db": -3, "max_snr_db": 12}],
        "condition=c": [{"name": "Telephone", "low_hz": 300, "high_hz": 3400, "mu_law_bits": 8}],
        "condition=d": [{"name": "Telephone", "low_hz": 300, "high_hz": 3400, "mu_law_bits": 8}],
    }
    assert untargeted_policy(policies) == [
        {"name": "BackgroundNoise", "groups": ["human", "machine"], "min_snr_db": -6, "max_snr_db": 15, "p": 0.5},
        {"name": "Telephone", "low_hz": 300, "high_hz": 3400, "mu_law_bits": 8, "p": 0.5},
    ]


def test_snr_floor_lowers_only_background_noise_minima_above_it_and_leaves_the_policies_alone():
    noise = {"name": "BackgroundNoise", "groups": ["machine"], "min_snr_db": -6, "max_snr_db": 6}
    phone = {"name": "Telephone", "low_hz": 300, "high_hz": 3400, "mu_law_bits": 8}
    policies = {"condition=a": [noise, phone], "condition=b": [noise | {"min_snr_db": -3}]}
    assert with_snr_floor(policies, -4) == {
        "condition=a": [noise, phone],
        "condition=b": [noise | {"min_snr_db": -4}],
    }
    assert with_snr_floor(policies, -20)["condition=a"] == [noise | {"min_snr_db": -20}, phone]
    assert policies["condition=b"][0]["min_snr_db"] == -3


def test_report_of_a_subset_of_arms_gives_the_table_and_the_bar_without_the_checklist_test(capsys):
    test = pd.DataFrame(
        {"condition": ["clean", "machine_0db"] * 4, "source_id": ["s1", "s1", "s2", "s2", "s3", "s3", "s4", "s4"]}
    )
    runs = {
        1: {"a": {"correct": [1, 0, 1, 0, 1, 0, 1, 1]}, "d": {"correct": [1, 1, 1, 1, 1, 1, 1, 0]}},
        2: {"a": {"correct": [1, 0, 1, 0, 1, 0, 1, 0]}, "d": {"correct": [1, 1, 1, 1, 1, 1, 1, 1]}},
    }
    out = report(test, runs, seed=0, arms=("a", "d"))
    table = pd.DataFrame(out["table"]).set_index(["arm", "slice"])
    assert table.loc[("a", "condition=machine_0db"), "accuracy"] == 0.125
    assert table.loc[("d", "condition=machine_0db"), ["seed_min", "seed_max"]].tolist() == [0.75, 1.0]
    assert out["bar"] == {
        "condition=machine_0db": {"need": 0.85, "got": 0.875, "met": True},
        "condition=clean": {"need": 0.99, "got": 1.0, "met": True},
    }
    assert "weakest" not in out and "checklist" not in capsys.readouterr().out


def _against_targeting(arm: str) -> tuple[pd.DataFrame, dict]:
    """Four recordings, clean and at machine 0 dB; on machine 0 dB (c) gets 2 of 4 right and `arm` all 4."""
    test = pd.DataFrame(
        {"condition": ["clean", "machine_0db"] * 4, "source_id": ["s1", "s1", "s2", "s2", "s3", "s3", "s4", "s4"]}
    )
    c, other = [1, 0, 1, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]
    return test, {s: {"a": {"correct": [1, 0] * 4}, "c": {"correct": c}, arm: {"correct": other}} for s in (1, 2)}


def test_report_gives_the_checklist_against_targeting_on_every_slice(capsys):
    test, runs = _against_targeting("d")
    out = report(test, runs, seed=0, arms=("a", "c", "d"))
    assert set(out["d_minus_c_by_slice"]) == {"condition=clean", "condition=machine_0db"}
    assert out["d_minus_c_by_slice"]["condition=clean"] == (0.0, 0.0, 0.0)
    assert out["d_minus_c_by_slice"]["condition=machine_0db"][0] == 0.5
    assert "condition=machine_0db: +0.500" in capsys.readouterr().out


def test_report_gives_the_noise_aware_arm_against_targeting_on_the_weakest_slice(capsys):
    test, runs = _against_targeting("e")
    out = report(test, runs, seed=0, arms=("a", "c", "e"))
    assert out["e_minus_c"][0] == 0.5
    assert out["e_minus_c"][1] <= 0.5 <= out["e_minus_c"][2]
    assert "bar" not in out and "weakest" not in out
    assert "(e) - (c) = +0.500" in capsys.readouterr().out


def test_drawn_snr_reads_the_applied_background_noise_record():
    applied = [{"name": "BackgroundNoise", "params": {"applied": True, "snr_db": -2.5}}, {"name": "Gain", "params": {}}]
    skipped = [{"name": "BackgroundNoise", "params": {"applied": False}}]
    assert drawn_snr(json.dumps(applied)) == -2.5
    assert np.isnan(drawn_snr(json.dumps(skipped))) and np.isnan(drawn_snr(json.dumps([{"name": "Telephone"}])))


def test_snr_matched_pays_each_snr_bin_its_share_before_filling_from_the_rest():
    """Eight machine candidates at SNRs 0..7 dB in four bins of two; the checklist accepted 1 and 4..7. Hardest
    first, with weakness rising with SNR, (d) would take 7, 6, 5. Three bins get one sample each (largest
    remainders, ties by bin): 1 from bin 0, none from bin 1 (nothing accepted), 5 from bin 2; the one bin 1
    lacked comes from the rest, hardest first: 7. Telephone has no SNR and is picked as (d) picks it."""
    snr = list(range(8))
    judged = pd.DataFrame({
        "id": [f"m{k}" for k in snr] + ["t0", "t1", "t2"],
        "target_slice": ["machine"] * 8 + ["tel"] * 3,
        "verdict": ["reject", "accept", "reject", "review", "accept", "accept", "accept", "accept", "accept",
                    "accept", "reject"],
        "weakness": [k / 10 for k in snr] + [0.1, 0.9, 0.5],
    })  # fmt: skip
    drawn = pd.Series([float(k) for k in snr] + [np.nan] * 3, index=judged.index)
    paid = snr_matched(judged, drawn, {"machine": 3, "tel": 1}, "hardest", seed=0)
    assert sorted(judged.loc[paid, "id"]) == ["m1", "m5", "m7", "t1"]


def test_report_gives_the_snr_matched_arm_against_the_checklist_arm(capsys):
    test, runs = _against_targeting("d")
    for run in runs.values():
        run["d="] = {"correct": run["c"]["correct"]}  # (d=) as right as (c): 2 of 4 on machine 0 dB
    out = report(test, runs, seed=0, arms=("a", "c", "d", "d="))
    assert out["snr_matched_minus_d_by_slice"]["condition=machine_0db"][0] == -0.5
    assert "(d=) - (d) per slice" in capsys.readouterr().out
