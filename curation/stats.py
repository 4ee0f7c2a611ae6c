"""The statistics under every interval and test of the project: a cluster bootstrap and paired tests.

Evaluation sets are not independent samples. A stress-test set holds one copy of each source recording per
condition, so the "all" slice or a speaker slice counts every source several times: resampling single rows
would treat five copies of one recording as five pieces of evidence and give intervals that are too narrow.
Resampling is therefore done over *clusters* (the rows sharing a source), and when every cluster is one row
this is the ordinary bootstrap.

The bootstrap works on per-cluster sums. Drawing K clusters with replacement from K is a multinomial draw
over the clusters; clusters with identical sums are interchangeable, so the draw is made over the distinct
sum vectors with their multiplicities (exactly the same distribution, at a cost that does not grow with the
number of rows: for plain 0/1 outcomes it is a binomial draw).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import sparse
from scipy.stats import binomtest, chi2
from scipy.stats import t as t_dist

LEVEL = 0.95


def outcomes(values: np.ndarray, what: str) -> np.ndarray:
    """A 1-d bool array of per-sample outcomes, refusing empty input and values other than 0/1."""
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{what}: expected a non-empty 1-d array of per-sample outcomes, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{what}: outcomes must be booleans (or 0/1)")
        arr = arr.astype(bool)
    return arr


def percentiles(stats: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """The central `level` percentile interval of bootstrap replicates along axis 0 (NaN replicates, where
    the metric is undefined, ignored; NaN bounds when it is undefined in all)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    tail = (1.0 - level) / 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined in every replicate: NaN bounds
        lo, hi = np.nanquantile(stats, [tail, 1.0 - tail], axis=0)
    return lo, hi


def cluster_sums(values: np.ndarray, clusters: np.ndarray | None) -> np.ndarray:
    """Per-cluster column sums (K, m) of per-row values (n, m); rows are their own clusters when `clusters`
    is None. Clusters are ordered by their sorted key, so the result does not depend on the row order."""
    vals = np.asarray(values, dtype=np.float64)
    if vals.ndim == 1:
        vals = vals[:, None]
    if clusters is None:
        return vals
    keys = np.asarray(clusters)
    if keys.shape[0] != vals.shape[0]:
        raise ValueError(f"cluster_sums: {keys.shape[0]} cluster keys for {vals.shape[0]} rows")
    _, codes = np.unique(keys.astype(str), return_inverse=True)
    sums = np.zeros((int(codes.max()) + 1, vals.shape[1]))
    np.add.at(sums, codes.reshape(-1), vals)
    return sums


def _distinct_rows(sums: np.ndarray | sparse.csr_matrix) -> tuple[np.ndarray | sparse.csr_matrix, np.ndarray]:
    """The distinct rows of per-cluster sums with their multiplicities, in a canonical (sorted) order."""
    if not sparse.issparse(sums):
        return np.unique(sums, axis=0, return_counts=True)
    csr = sparse.csr_matrix(sums)
    csr.sum_duplicates()
    csr.sort_indices()
    keys = [
        csr.indices[a:b].tobytes() + b"|" + csr.data[a:b].tobytes()
        for a, b in zip(csr.indptr[:-1], csr.indptr[1:], strict=True)
    ]
    _, first, counts = np.unique(np.array(keys, dtype=object), return_index=True, return_counts=True)
    return csr[first], counts


def resample_sums(sums: np.ndarray | sparse.spmatrix, seed: int, n_boot: int = 1000) -> np.ndarray:
    """Bootstrap replicates (n_boot, m) of the column totals of per-cluster sums (K, m), dense or sparse:
    each replicate draws K clusters with replacement. Deterministic for a seed, whatever the cluster order."""
    if sums.ndim != 2 or sums.shape[0] == 0:
        raise ValueError(f"resample_sums: expected per-cluster sums of shape (K, m) with K > 0, got {sums.shape}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    distinct, counts = _distinct_rows(sums)
    k = sums.shape[0]
    draws = np.random.default_rng(seed).multinomial(k, counts / k, size=n_boot).astype(np.float64)
    if sparse.issparse(distinct):
        return np.asarray((distinct.T @ draws.T).T)
    return draws @ distinct


def all_or_none_interval(estimate: float, units: int, level: float = LEVEL) -> tuple[float, float]:
    """The exact (Clopper-Pearson) interval of a rate observed as exactly 0 or 1 on `units` independent units.

    The percentile bootstrap collapses to a point when every outcome is the same (300 clean samples all
    right give [1, 1]), which reads as certainty. Counting each cluster as one unit is conservative: copies of
    one recording are not independent evidence.
    """
    if estimate not in (0.0, 1.0) or units < 1:
        raise ValueError(f"all_or_none_interval: needs a rate of 0 or 1 on >= 1 unit, got {estimate} on {units}")
    bound = ((1.0 - level) / 2.0) ** (1.0 / units)
    return (bound, 1.0) if estimate == 1.0 else (0.0, 1.0 - bound)


def ratio_ci(
    numerator: np.ndarray, clusters: np.ndarray | None, seed: int, n_boot: int = 1000, level: float = LEVEL
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of per-row 0/1 or real values and its cluster-bootstrap percentile interval.

    The statistic is a ratio (sum of values / number of rows), so the bootstrap stays right when clusters
    have different sizes. 0/1 values that are all equal get `all_or_none_interval` over the clusters.
    """
    vals = np.asarray(numerator, dtype=np.float64)
    sums = cluster_sums(np.column_stack([vals, np.ones_like(vals)]), clusters)
    if vals.min() == vals.max() and vals[0] in (0.0, 1.0):
        return (float(vals[0]), *all_or_none_interval(float(vals[0]), sums.shape[0], level))
    boot = resample_sums(sums, seed, n_boot)
    lo, hi = percentiles(boot[:, 0] / boot[:, 1], level)
    return float(vals.mean()), float(lo), float(hi)


def paired_test(a_only: np.ndarray, b_only: np.ndarray) -> float:
    """Two-sided p-value that two models are equally accurate, from per-cluster discordant counts.

    Every cluster one pair: McNemar's exact test (binomial on the discordant pairs). Larger clusters: the
    clustered McNemar test of Durkalski et al. (2003), chi-square (sum d_c)^2 / sum d_c^2 with
    d_c = b_only_c - a_only_c, which does not count correlated pairs of one source as independent evidence.
    1.0 when nothing is discordant.
    """
    a_only, b_only = np.asarray(a_only, dtype=np.float64), np.asarray(b_only, dtype=np.float64)
    if a_only.sum() + b_only.sum() == 0:
        return 1.0
    if np.all(a_only + b_only <= 1):
        return float(binomtest(int(b_only.sum()), int(a_only.sum() + b_only.sum()), 0.5).pvalue)
    d = b_only - a_only
    denom = float((d**2).sum())
    return float(chi2.sf(float(d.sum()) ** 2 / denom, df=1)) if denom else 1.0


def paired_delta(
    correct_a: np.ndarray,
    correct_b: np.ndarray,
    seed: int,
    clusters: np.ndarray | None = None,
    n_boot: int = 1000,
    level: float = LEVEL,
) -> dict[str, float | int]:
    """Accuracy of model b minus model a on the same samples: a paired cluster-bootstrap interval (a cluster's
    rows resampled together, both models at once) and the p-value of `paired_test`.

    Returns delta, ci_low, ci_high, p (the test's p-value), and the counts n, clusters, a_only (a right,
    b wrong), b_only.
    """
    a = outcomes(correct_a, "paired_delta model a")
    b = outcomes(correct_b, "paired_delta model b")
    if a.size != b.size:
        raise ValueError(f"paired_delta: {a.size} outcomes for model a but {b.size} for model b")
    sums = cluster_sums(np.column_stack([a & ~b, ~a & b, np.ones(a.size)]), clusters)
    boot = resample_sums(sums, seed, n_boot)
    lo, hi = percentiles((boot[:, 1] - boot[:, 0]) / boot[:, 2], level)
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    return {
        "delta": (b_only - a_only) / a.size,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "p": paired_test(sums[:, 0], sums[:, 1]),
        "n": int(a.size),
        "clusters": int(sums.shape[0]),
        "a_only": a_only,
        "b_only": b_only,
    }


def difference_z(in_group: np.ndarray, values: np.ndarray, clusters: np.ndarray | None) -> tuple[float, float, float]:
    """(difference, standard error, two-sided p): the mean of `values` inside a group minus outside it, and a
    test of it.

    The standard error is the larger of two estimates: a cluster-robust (linearisation) one, which is right
    when rows share a source (a cluster may have rows on both sides: one recording, several conditions) but
    collapses to 0 for a group whose rows are all wrong; and the pooled one of the classic two-proportion
    test, which holds under the null hypothesis but ignores clustering. The p-value takes Student's t with
    G - 1 degrees of freedom, G the number of clusters on the smaller side: a group of a few recordings copied
    many times carries the evidence of a few samples. (Simulated with 5 copies per recording and strongly
    correlated copies, a nominal 5% test flagged 13% of random 5-recording groups with a normal reference,
    1% with this one; 6.5% and 5.5% for 30-recording groups.)
    """
    g = np.asarray(in_group, dtype=bool)
    v = np.asarray(values, dtype=np.float64)
    n_in, n_out = int(g.sum()), int((~g).sum())
    if n_in == 0 or n_out == 0:
        raise ValueError("difference_z: the group and the rest must both be non-empty")
    m_in, m_out, pooled = v[g].mean(), v[~g].mean(), v.mean()
    influence = np.where(g, (v - m_in) / n_in, -(v - m_out) / n_out)
    per_cluster = cluster_sums(influence, clusters)[:, 0]
    k = per_cluster.size
    robust = float(np.sqrt(k / (k - 1) * (per_cluster**2).sum())) if k > 1 else 0.0
    spread = float(((v - pooled) ** 2).mean())  # p(1 - p) for 0/1 values
    se = max(robust, float(np.sqrt(spread * (1.0 / n_in + 1.0 / n_out))))
    diff = float(m_in - m_out)
    if se == 0.0:
        return diff, 0.0, 1.0
    keys = np.arange(v.size) if clusters is None else np.asarray(clusters)
    units = min(np.unique(keys[g]).size, np.unique(keys[~g]).size)
    return diff, se, float(2.0 * t_dist.sf(abs(diff) / se, df=max(units - 1, 1)))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """False-discovery-rate adjusted p-values (q-values) of Benjamini and Hochberg, in the input order."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p
    order = np.argsort(p, kind="stable")
    ranked = p[order] * p.size / np.arange(1, p.size + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty_like(q)
    out[order] = q
    return out
