"""Discovery of weak slices nobody named: groups of rows with significantly more errors than the rest.

The search space is every value of the metadata columns asked for ("speaker=s3"), every tag ("tag=loud"),
optionally every cluster of the model's own embeddings ("embedding_cluster=2": k-means on its penultimate
features, for weaknesses no column describes), and every conjunction of two of those terms from different
columns ("condition=noisy & gender=f"). Each candidate with enough rows is tested against the rest of the set
with the cluster-robust test of `curation.stats` (rows sharing a source recording are one unit of evidence),
and the q-values of Benjamini and Hochberg control the false-discovery rate over *all* candidates tested.

As in SliceFinder (Chung et al., 2019), a conjunction is reported only when its error rate is higher than
those of both of its single terms: "speaker=s3 & gender=m" adds nothing over "speaker=s3" when s3 is a man.
A reported slice that is weak only because it overlaps a higher-ranked one (a gender is weak because a weak
speaker belongs to it) is marked in its description as explained by that slice.

Everything is deterministic for a seed and independent of the row order: rows are put in the order of their
ids first, and every interval draws from a generator derived from (seed, slice name).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from augment.rng import derive_seed
from curation.io import markdown_cell
from curation.metrics import cluster_keys
from curation.slices import AND, TAG, TAG_PREFIX, as_text, tag_mask, tag_names
from curation.stats import LEVEL, benjamini_hochberg, difference_z, outcomes, ratio_ci

EMBEDDING_COLUMN = "embedding_cluster"
N_INIT = 4
COLUMNS = (
    "slice",
    "order",
    "n",
    "clusters",
    "errors",
    "error_rate",
    "ci_low",
    "ci_high",
    "rest_error_rate",
    "lift",
    "diff",
    "p",
    "q",
    "description",
)


@dataclass(frozen=True)
class _Terms:
    """The terms one searched column contributes: names ("speaker=s3") and their (N, t) row masks."""

    column: str
    names: list[str]
    masks: np.ndarray


RESERVED = frozenset(
    {"id", "path", "sha256", "pred", "correct", "confidence", "p_label", "source_id", "augment_params", "split",
     "dup_group", "take", "index"}
)  # fmt: skip


def default_columns(pred: pd.DataFrame) -> list[str]:
    """The columns to search when params name none: every metadata column (the label included: a rare or
    confused class is a slice too) and every tag, without identifiers, file facts and model outputs."""
    meta = [str(c) for c in pred.columns if str(c) not in RESERVED and not str(c).startswith(TAG_PREFIX)]
    return meta + ([TAG] if tag_names(pred) else [])


def _text(values: pd.Series) -> np.ndarray:
    """Values as the text a slice name holds (`slices.as_text`), as an array."""
    return as_text(values).to_numpy(dtype=object)


def _canonical_order(pred: pd.DataFrame) -> np.ndarray:
    """Row positions sorted by id, so that results do not depend on the order of the rows."""
    if "id" not in pred.columns:
        raise KeyError("predictions lack column 'id'")
    if pred["id"].isna().any():
        raise ValueError("predictions have rows without an id")
    ids = _text(pred["id"]).astype(str)
    if pd.Index(ids).has_duplicates:
        raise ValueError("predictions have duplicate ids; discovery needs one row per id")
    return np.argsort(ids, kind="stable")


def _cluster_keys(df: pd.DataFrame, cluster_column: str | None) -> np.ndarray | None:
    """Cluster keys per row (rows sharing a source share a key), or None when every row is its own cluster.

    The units are those of `metrics.cluster_keys` (a missing or empty key makes the row its own cluster),
    recoded as zero-padded codes of one width: `curation.stats` turns keys into text and sorts them once per
    test, which is several times faster on short equal-width strings than on the original ids."""
    keys = cluster_keys(df, cluster_column)
    if keys is None:
        return None
    codes = np.unique(keys, return_inverse=True)[1].reshape(-1)
    if codes.max() + 1 == len(codes):
        return None
    return np.char.zfill(codes.astype(str), len(str(codes.max())))


def _standardised(embeddings: np.ndarray, n_rows: int) -> np.ndarray:
    """Embeddings as a finite (N, D) float array with every feature at mean 0 and variance 1 (constant
    features left at 0), so that no feature dominates the k-means distances by its scale alone."""
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != n_rows:
        raise ValueError(f"embeddings must have shape (N, D) with N = {n_rows} rows, got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or infinite values")
    std = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(std > 0, std, 1.0)


def embedding_clusters(pred: pd.DataFrame, embeddings: np.ndarray, *, seed: int, n_clusters: int = 8) -> np.ndarray:
    """The k-means cluster ("0".."k-1") of each row of `pred`, in its row order, from standardised embeddings.

    Clusters are numbered by size, largest first. The rows are clustered in id order, so the assignment does
    not depend on the row order; this is the "embedding_cluster" pseudo-column that `discover` searches.
    """
    from sklearn.cluster import KMeans

    if n_clusters < 2 or n_clusters > len(pred):
        raise ValueError(f"n_clusters must be between 2 and the number of rows ({len(pred)}), got {n_clusters}")
    order = _canonical_order(pred)
    x = _standardised(embeddings, len(pred))[order]
    km = KMeans(n_clusters=n_clusters, n_init=N_INIT, random_state=derive_seed(seed, "discovery", "kmeans") % 2**32)
    raw = km.fit_predict(x)
    sizes = np.bincount(raw, minlength=n_clusters)
    first = np.array([np.flatnonzero(raw == k)[0] if sizes[k] else len(raw) for k in range(n_clusters)])
    rank = np.empty(n_clusters, dtype=np.int64)
    rank[np.lexsort((first, -sizes))] = np.arange(n_clusters)
    out = np.empty(len(pred), dtype=object)
    out[order] = rank[raw].astype(str)
    return out


def _search_terms(df: pd.DataFrame, columns: list[str], max_values: int, skipped: dict[str, str]) -> list[_Terms]:
    """The terms of every searched column; columns with too many values (or one) are noted in `skipped`."""
    out: list[_Terms] = []
    for column in dict.fromkeys(columns):
        if column == TAG:
            present = [t for t in tag_names(df) if tag_mask(df, t).any()]
            if not present:
                skipped[TAG] = "no tag column is true on any row"
            for t in present:
                mask = tag_mask(df, t).to_numpy()
                out.append(_Terms(TAG_PREFIX + t, [f"{TAG}={t}"], mask[:, None]))
            continue
        if column not in df.columns:
            raise KeyError(f"discovery column {column!r} is not in the predictions; columns: {list(df.columns)}")
        values, codes = np.unique(_text(df[column]).astype(str), return_inverse=True)
        if len(values) > max_values:
            skipped[column] = f"{len(values)} distinct values > max_values={max_values}"
            continue
        if len(values) < 2:
            skipped[column] = "a single value: no row outside it"
            continue
        keep = [k for k, v in enumerate(values) if AND not in v]
        for k in sorted(set(range(len(values))) - set(keep)):
            skipped[f"{column}={values[k]}"] = f"value contains {AND!r}, which a slice name cannot hold"
        masks = codes.reshape(-1)[:, None] == np.array(keep)[None, :]
        out.append(_Terms(column, [f"{column}={values[k]}" for k in keep], masks))
    return out


def _describe_cluster(
    mask: np.ndarray, labels: np.ndarray, term_names: list[str], term_masks: np.ndarray, overall: np.ndarray
) -> str:
    """A name a person can give one embedding cluster: its label mix and its most over-represented terms,
    e.g. "label 7 (64%); condition=car_0db (3.1x)"."""
    size = int(mask.sum())
    names, counts = np.unique(labels[mask], return_counts=True)
    order = np.lexsort((names, -counts))
    mix = [f"label {names[i]} ({counts[i] / size:.0%})" for i in order[:2] if i == order[0] or counts[i] >= 0.15 * size]
    parts = [", ".join(mix)]
    if term_names:
        inside = term_masks[mask].sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(overall > 0, inside / size / overall, 0.0)
        ok = (ratio >= 1.5) & (inside >= max(3.0, 0.1 * size))
        picks = sorted(np.flatnonzero(ok), key=lambda i: (-ratio[i], term_names[i]))[:3]
        parts += [f"{term_names[i]} ({ratio[i]:.1f}x)" for i in picks]
    return "; ".join(parts)


def _explanation(
    mask: np.ndarray,
    above: list[tuple[str, np.ndarray]],
    err: np.ndarray,
    clusters: np.ndarray | None,
    alpha: float,
    min_size: int,
) -> str:
    """ "explained by S ..." when a higher-ranked slice S overlaps this one and, without S's rows, this slice
    is no longer significantly weaker than the rest (raw p >= alpha; or at least half of it lies in S and fewer
    than `min_size` rows are left to test). A sub-slice of a higher-ranked slice P is only compared with the
    slices ranked above P: its siblings inside P share P's excess, which says nothing about it."""
    inside = [i for i, (_, other) in enumerate(above) if not (mask & ~other).any()]
    for name, other in above[: inside[0] if inside else len(above)]:
        keep = ~other
        left = mask & keep
        n_left, n = int(left.sum()), int(mask.sum())
        if n_left == n or n_left == int(keep.sum()):
            continue
        if n_left < min_size:
            if 2 * n_left <= n:
                return f"explained by {name} (only {n_left} of its {n} rows lie outside it)"
            continue
        diff, _, p = difference_z(left[keep], err[keep], None if clusters is None else clusters[keep])
        if diff <= 0 or p >= alpha:
            rate, rest = err[left].mean(), err[keep & ~mask].mean()
            return f"explained by {name} (without its rows: {rate:.2f} vs {rest:.2f} for the rest)"
    return ""


def _interacts(
    mask: np.ndarray, parent: np.ndarray, err: np.ndarray, clusters: np.ndarray | None, alpha: float
) -> bool:
    """Whether a conjunction is significantly weaker than the rest of one of its terms (raw p < alpha). The
    pruning rule alone only asks for a higher error rate, which noise gives half the time, and a sub-slice
    that merely shares its parent's weakness would repeat the parent in the report."""
    if not (parent & ~mask).any():
        return True
    diff, _, p = difference_z(mask[parent], err[parent], None if clusters is None else clusters[parent])
    return diff > 0 and p < alpha


def discover(
    pred: pd.DataFrame,
    columns: list[str],
    *,
    seed: int,
    min_size: int = 20,
    max_order: int = 2,
    alpha: float = 0.05,
    cluster_column: str | None = "source_id",
    max_values: int = 50,
    n_boot: int = 1000,
    embeddings: np.ndarray | None = None,
    n_clusters: int = 8,
    top_k: int | None = 20,
    min_clusters: int = 5,
) -> pd.DataFrame:
    """The slices of `pred` with significantly more errors than the rest, most significant first.

    `pred` has columns id (unique), label, pred, correct and the metadata / "tag:<name>" columns named in
    `columns` ("tag" = every tag). Candidates: every term and every conjunction of up to `max_order` (1 or 2)
    terms of different columns with at least `min_size` rows and a row outside; `embeddings` (N, D) aligned to
    the rows add the k-means pseudo-column "embedding_cluster" (see `embedding_clusters`). Each candidate is
    tested with `stats.difference_z` (rows sharing `cluster_column` are one unit; None or an absent column:
    rows are independent), q-values are Benjamini-Hochberg over all candidates, and a row is reported when
    q < alpha and its error rate is above the rest's and it spans at least `min_clusters` clusters (a few
    recordings copied under many conditions are not evidence of a weak group); a conjunction only when its
    error rate is above both of its terms'. The description of a row names an embedding cluster it holds
    (label mix, over-represented terms) and "explained by S (...)" when the row is weak only through its
    overlap with a higher-ranked S. A conjunction must also be significantly weaker than the rest of each of
    its terms (raw p < alpha): an interaction, not a repeat of its weak parent. Only the reported rows get a
    bootstrap interval (seed derived from the slice name). Returns the first `top_k` by (q, -diff, slice)
    with the columns of `COLUMNS`; attrs hold "tested" (candidates tested), "skipped" (column or term -> why
    it was not searched) and "cluster_column" (the one used, or None).
    """
    if max_order not in (1, 2):
        raise ValueError(f"max_order must be 1 or 2, got {max_order}")
    if min_size < 1 or max_values < 1:
        raise ValueError(f"min_size and max_values must be >= 1, got {min_size} and {max_values}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if top_k is not None and top_k < 0:
        raise ValueError(f"top_k must be >= 0 or None, got {top_k}")
    for required in ("label", "correct"):
        if required not in pred.columns:
            raise KeyError(f"predictions lack column {required!r}")
    order = _canonical_order(pred)
    df = pred.iloc[order].reset_index(drop=True)
    err = ~outcomes(df["correct"].to_numpy(), "discovery: predictions' correct column")
    if embeddings is not None:
        if EMBEDDING_COLUMN in df.columns:
            raise ValueError(f"predictions already have a column {EMBEDDING_COLUMN!r}; it is reserved for embeddings")
        cl = embedding_clusters(pred, embeddings, seed=seed, n_clusters=n_clusters)
        df[EMBEDDING_COLUMN] = cl[order]
        columns = [*columns, EMBEDDING_COLUMN]
    clusters = _cluster_keys(df, cluster_column)
    skipped: dict[str, str] = {}
    groups = _search_terms(df, list(columns), max_values, skipped)

    n_rows, total_err = len(df), float(err.sum())
    names = [n for g in groups for n in g.names]
    masks = np.concatenate([g.masks for g in groups], axis=1) if groups else np.zeros((n_rows, 0), dtype=bool)
    group_of = np.concatenate([np.full(len(g.names), i) for i, g in enumerate(groups)]) if groups else np.zeros(0)
    m = masks.astype(np.float64)
    single_n, single_e = m.sum(axis=0), err.astype(np.float64) @ m
    single_rate = np.divide(single_e, single_n, out=np.zeros_like(single_e), where=single_n > 0)

    cands: list[tuple[str, tuple[int, ...], int, int]] = []
    for t, name in enumerate(names):
        cands.append((name, (t,), int(single_n[t]), int(single_e[t])))
    if max_order == 2 and len(groups) > 1:
        pair_n = m.T @ m
        pair_e = (m * err[:, None]).T @ m
        for a, b in itertools.combinations(range(len(names)), 2):
            if group_of[a] != group_of[b]:
                cands.append((names[a] + AND + names[b], (a, b), int(pair_n[a, b]), int(pair_e[a, b])))
    cands = [c for c in cands if min_size <= c[2] < n_rows]

    def mask_of(ts: tuple[int, ...]) -> np.ndarray:
        return masks[:, ts].all(axis=1)

    tested = pd.DataFrame(cands, columns=["slice", "terms", "n", "errors"])
    tested["order"] = tested["terms"].map(len)
    tested["error_rate"] = tested["errors"] / tested["n"]
    tested["rest_error_rate"] = (total_err - tested["errors"]) / (n_rows - tested["n"])
    zs = [difference_z(mask_of(ts), err, clusters) for ts in tested["terms"]]
    tested["diff"] = [z[0] for z in zs]
    tested["p"] = [z[2] for z in zs]
    tested["q"] = benjamini_hochberg(tested["p"].to_numpy())
    above_parents = [
        all(rate > single_rate[t] for t in ts) if len(ts) > 1 else True
        for ts, rate in zip(tested["terms"], tested["error_rate"], strict=True)
    ]
    keep = (tested["q"] < alpha) & (tested["diff"] > 0) & np.array(above_parents, dtype=bool)
    table = tested[keep].sort_values(["q", "diff", "slice"], ascending=[True, False, True], kind="mergesort")
    if clusters is not None:
        spans = [np.unique(clusters[mask_of(ts)]).size for ts in table["terms"]]
        table = table[np.array(spans, dtype=np.int64) >= min_clusters]
    interacting = [
        all(_interacts(mask_of(ts), masks[:, t], err, clusters, alpha) for t in ts) if len(ts) > 1 else True
        for ts in table["terms"]
    ]
    table = table[np.array(interacting, dtype=bool)]
    if top_k is not None:
        table = table.head(top_k)
    table = table.reset_index(drop=True)

    labels = _text(df["label"]).astype(str)
    meta = [i for i, g in enumerate(group_of) if groups[int(g)].column != EMBEDDING_COLUMN]
    meta_names, meta_masks = [names[i] for i in meta], masks[:, meta]
    meta_overall = meta_masks.mean(axis=0) if meta else np.zeros(0)
    rows, above = [], []
    for r in table.itertuples(index=False):
        mask = mask_of(r.terms)
        rate, lo, hi = ratio_ci(
            err[mask],
            None if clusters is None else clusters[mask],
            derive_seed(seed, "discovery", r.slice),
            n_boot,
            LEVEL,
        )
        description = [
            _describe_cluster(masks[:, t], labels, meta_names, meta_masks, meta_overall)
            for t in r.terms
            if groups[int(group_of[t])].column == EMBEDDING_COLUMN
        ]
        why = [_explanation(mask, above, err, clusters, alpha, min_size)]
        above.append((r.slice, mask))
        rows.append(
            {
                "slice": r.slice,
                "order": int(r.order),
                "n": int(r.n),
                "clusters": int(mask.sum()) if clusters is None else int(np.unique(clusters[mask]).size),
                "errors": int(r.errors),
                "error_rate": rate,
                "ci_low": lo,
                "ci_high": hi,
                "rest_error_rate": float(r.rest_error_rate),
                "lift": float(r.error_rate / r.rest_error_rate) if r.rest_error_rate > 0 else math.inf,
                "diff": float(r.diff),
                "p": float(r.p),
                "q": float(r.q),
                "description": "; ".join(d for d in [*description, *why] if d),
            }
        )
    out = pd.DataFrame(rows, columns=list(COLUMNS)).astype(
        {"order": np.int64, "n": np.int64, "clusters": np.int64, "errors": np.int64}
    )
    out.attrs["tested"] = len(tested)
    out.attrs["skipped"] = skipped
    out.attrs["cluster_column"] = cluster_column if cluster_column in df.columns else None
    return out


def to_markdown(table: pd.DataFrame) -> str:
    """A markdown table of discovered slices for the report (error rate as "0.42 [0.35, 0.50]")."""
    if table.empty:
        tested = table.attrs.get("tested")
        where = f" among {tested} candidates tested" if tested is not None else ""
        return f"No slice has significantly more errors than the rest{where}.\n"
    head = ["slice", "n", "clusters", "error rate [95% CI]", "rest", "lift", "q", "description"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in table.itertuples(index=False):
        cells = [
            r.slice,
            r.n,
            r.clusters,
            f"{r.error_rate:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]",
            f"{r.rest_error_rate:.2f}",
            "inf" if math.isinf(r.lift) else f"{r.lift:.1f}x",
            f"{r.q:.2g}",
            r.description,
        ]
        lines.append("| " + " | ".join(markdown_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"
