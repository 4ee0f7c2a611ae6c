"""The ablation benchmark's pure parts: the blind policy, the SNR floor of the stress test and the report for a
subset of arms (the stratified pick is the pipeline's: tests/test_versions_stratify.py)."""

import pandas as pd

from benchmarks.ablation_fsdd import report, untargeted_policy, with_snr_floor


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


def test_report_gives_the_checklist_arm_against_its_unstratified_pick(capsys):
    test, runs = _against_targeting("d")
    for run in runs.values():
        run["du"] = {"correct": run["c"]["correct"]}  # (du) as right as (c): 2 of 4 on machine 0 dB
    out = report(test, runs, seed=0, arms=("a", "c", "d", "du"))
    assert out["d_minus_unstratified_by_slice"]["condition=machine_0db"][0] == 0.5
    assert "(d) - (du) per slice" in capsys.readouterr().out
