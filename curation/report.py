"""A self-contained HTML error-analysis report a product owner can open from disk.

DVC's own HTML plots load their scripts from a CDN; this page loads nothing: figures are matplotlib PNGs
embedded as base64 data URIs, the stylesheet is inline, and every text taken from the data (slice names,
descriptions, labels) is escaped. The same inputs give byte-identical HTML (PNG metadata is stripped and the
matplotlib settings are pinned), so the page can be versioned next to the metrics it shows.

Per evaluation set ("dev" first, then "test"): a headline (overall accuracy and macro-F1 with 95% intervals,
the top-priority slice in a sentence), per-slice accuracy against each slice's baseline, the error-analysis
table of `curation.analysis`, the weak slices of `curation.discovery`, the confusion matrix and per-class
scores of `curation.metrics`, and the focus class's false-positive / false-negative rates per slice.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from curation.slices import ALL

if TYPE_CHECKING:
    from curation.metrics import SliceReport

ORDER = ("dev", "test")
ANNOTATE_MAX = 20  # confusion matrices with more classes than this get no per-cell counts
TICKS_MAX = 60  # ... and with more than this no class names on the axes
LABEL_CHARS = 48  # slice names longer than this are shortened in figures (tables show them whole)
DASH = "–"

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:1.5rem auto;max-width:1100px;color:#222;
line-height:1.4;padding:0 1rem}
h1{font-size:1.6rem}h2{margin-top:2.5rem;border-bottom:2px solid #ccc;padding-bottom:.2rem}
h3{margin-top:1.6rem}
nav{background:#f6f6f6;border:1px solid #ddd;border-radius:6px;padding:.5rem 1rem;display:inline-block}
nav ul{margin:.2rem 0;padding-left:1.2rem}
.headline{background:#f3f7fc;border-left:4px solid #3a6ea5;padding:.6rem 1rem;margin:.8rem 0}
.headline p{margin:.3rem 0}
.note{color:#555;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin:.6rem 0}
th,td{border:1px solid #ddd;padding:.25rem .5rem;vertical-align:top}
th{background:#f0f0f0;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.text{max-width:28rem;overflow-wrap:anywhere}
tr.all td{font-weight:600;background:#fafafa}
tr.small td{color:#888}
tr.target td:first-child{border-left:4px solid #d9822b}
img{max-width:100%;height:auto;border:1px solid #eee}
"""


@dataclass
class ReportPart:
    """What the report shows of one evaluation set ("dev" or "test").

    errors: `analysis.error_table` ("all" first, then slices by priority). slices, classes, confusion: the
    tables of a `metrics.SliceReport`. discovered: `discovery.discover` (may be empty). targets: the slices
    chosen for augmentation. focus: the class whose false-positive / false-negative rates are in `slices`.
    """

    errors: pd.DataFrame
    slices: pd.DataFrame
    classes: pd.DataFrame
    confusion: pd.DataFrame
    discovered: pd.DataFrame
    targets: list[str] = field(default_factory=list)
    focus: str | None = None

    @classmethod
    def of(
        cls,
        report: SliceReport,
        errors: pd.DataFrame,
        discovered: pd.DataFrame,
        targets: Sequence[str] = (),
        focus: str | None = None,
    ) -> ReportPart:
        """A part from a `metrics.SliceReport` (its slices, classes and confusion tables) and the rest."""
        return cls(errors, report.slices, report.classes, report.confusion, discovered, list(targets), focus)


# ---------------------------------------------------------------------------------------------- formatting


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _missing(x: object) -> bool:
    return x is None or (np.ndim(x) == 0 and not isinstance(x, str) and bool(pd.isna(x)))


def _num(x: object, digits: int = 2) -> str:
    return DASH if _missing(x) else f"{float(x):.{digits}f}"  # type: ignore[arg-type]


def _ci(point: object, low: object, high: object, digits: int = 2) -> str:
    if _missing(point):
        return DASH
    return f"{_num(point, digits)} [{_num(low, digits)}, {_num(high, digits)}]"


def _int(x: object) -> str:
    return DASH if _missing(x) else str(int(x))  # type: ignore[call-overload]


def _pts(x: object) -> str:
    """A share of the whole set in accuracy points (0.085 -> "8.5")."""
    return DASH if _missing(x) else f"{100 * float(x):.1f}"  # type: ignore[arg-type]


def _table(head: Sequence[tuple[str, bool]], rows: Iterable[tuple[Sequence[str], str]], note: str | None = None) -> str:
    """An HTML table. head: (title, numeric) per column; rows: (already escaped cells, row class)."""
    out = ["<table><thead><tr>", *(f"<th>{_esc(title)}</th>" for title, _ in head), "</tr></thead><tbody>"]
    for cells, css in rows:
        out.append(f'<tr class="{css}">' if css else "<tr>")
        out += [
            f'<td class="{"num" if numeric else "text"}">{c}</td>' for c, (_, numeric) in zip(cells, head, strict=True)
        ]
        out.append("</tr>")
    out.append("</tbody></table>")
    if note:
        out.append(f'<p class="note">{note}</p>')
    return "".join(out)


def _row_of(table: pd.DataFrame, name: str) -> dict[str, Any] | None:
    rows = table[table["slice"] == name] if "slice" in table.columns else table.iloc[0:0]
    return None if rows.empty else rows.iloc[0].to_dict()


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "…"


# ------------------------------------------------------------------------------------------------- figures


def figure_uri(draw: Callable[[Any], Any]) -> str:
    """Run `draw(plt)` (it returns a figure) under pinned settings; the figure as a PNG data URI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # pinned defaults: the bytes must not depend on a matplotlibrc or on styles set elsewhere; no mathtext,
    # so a "$" in a slice name is printed, not parsed
    with plt.style.context("default"), plt.rc_context({"text.parse_math": False, "svg.hashsalt": "report"}):
        fig = draw(plt)
        try:
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
        finally:
            plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _accuracy_figure(rows: pd.DataFrame, targets: set[str], title: str) -> str:
    """Horizontal accuracy bars with 95% intervals, each slice's baseline marked, small slices hatched."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    rows = rows.iloc[::-1].reset_index(drop=True)  # first row on top
    y = np.arange(len(rows))
    acc = rows["accuracy"].to_numpy(dtype=float)
    err = np.vstack([acc - rows["ci_low"].to_numpy(dtype=float), rows["ci_high"].to_numpy(dtype=float) - acc])
    small = rows["small"].fillna(False).astype(bool).to_numpy()
    is_all = (rows["slice"] == ALL).to_numpy()
    colours = np.where(is_all, "#555555", np.where(small, "#a9c4e0", "#3a6ea5"))
    names = [("* " if s in targets else "") + _short(str(s)) for s in rows["slice"]]

    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(rows) + 1.4))
        bars = ax.barh(
            y,
            acc,
            height=0.7,
            color=colours,
            xerr=np.clip(err, 0, None),
            capsize=2,
            error_kw={"ecolor": "#222", "elinewidth": 1},
        )
        for bar, is_small in zip(bars, small, strict=True):
            if is_small:
                bar.set_hatch("///")
                bar.set_edgecolor("#6b8fb5")
        ax.scatter(
            rows["baseline"].to_numpy(dtype=float), y, marker="|", s=260, linewidths=2.2, color="#c0392b", zorder=3
        )
        ax.set_yticks(y, names, fontsize=8)
        ax.set_xlim(0, 1.02)
        ax.set_xlabel("accuracy (bars: 95% interval)")
        ax.grid(axis="x", color="#ddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_title(title, fontsize=10)
        handles = [
            Patch(facecolor="#555555", label="all"),
            Patch(facecolor="#3a6ea5", label="slice"),
            Patch(facecolor="#a9c4e0", edgecolor="#6b8fb5", hatch="///", label="small slice (too few samples)"),
            Line2D(
                [],
                [],
                color="#c0392b",
                marker="|",
                linestyle="none",
                markersize=12,
                markeredgewidth=2.2,
                label="baseline level",
            ),
        ]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        fig.tight_layout()
        return fig

    return figure_uri(draw)


def _confusion_matrix(confusion: pd.DataFrame, labels: list[str]) -> np.ndarray:
    """The "all" slice's confusion counts (rows: true class, columns: predicted) in the order of `labels`."""
    index = {label: k for k, label in enumerate(labels)}
    cm = np.zeros((len(labels), len(labels)), dtype=np.int64)
    if confusion.empty:
        return cm
    cells = confusion[confusion["slice"] == ALL]
    actual, predicted = cells["actual"].astype(str), cells["predicted"].astype(str)
    unknown = sorted((set(actual) | set(predicted)) - set(index))
    if unknown:
        raise ValueError(f"confusion table holds class(es) {unknown[:10]} that are not among the labels")
    np.add.at(cm, (actual.map(index).to_numpy(), predicted.map(index).to_numpy()), cells["count"].astype(np.int64))
    return cm


def confusion_figure(cm: np.ndarray, labels: list[str], title: str) -> str:
    """Row-normalised colours (share of each true class), counts annotated for up to ANNOTATE_MAX classes."""
    c = len(labels)
    support = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, support, out=np.zeros(cm.shape, dtype=float), where=support > 0)
    side = float(min(max(4.0, 0.42 * c + 2.2), 16.0))
    font = 8 if c <= ANNOTATE_MAX else 7

    def draw(plt: Any) -> Any:
        fig, ax = plt.subplots(figsize=(side + 1.2, side))
        im = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
        if c <= TICKS_MAX:
            ticks = np.arange(c)
            ax.set_xticks(ticks, [_short(x) for x in labels], rotation=90, fontsize=font)
            ax.set_yticks(ticks, [_short(x) for x in labels], fontsize=font)
        else:
            ax.set_xticks([])
            ax.set_yticks([])
        if c <= ANNOTATE_MAX:
            for t, p in zip(*np.nonzero(cm), strict=True):
                ax.text(
                    p,
                    t,
                    str(int(cm[t, p])),
                    ha="center",
                    va="center",
                    fontsize=font,
                    color="white" if share[t, p] > 0.55 else "#222",
                )
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_title(title, fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
        fig.tight_layout()
        return fig

    return figure_uri(draw)


# ------------------------------------------------------------------------------------------------ sections


def _headline(part: ReportPart, ranked: pd.DataFrame) -> str:
    overall = _row_of(part.errors, ALL) or _row_of(part.slices, ALL)
    if overall is None:
        raise ValueError("report: the error table and the slice table have no 'all' row")
    sl = _row_of(part.slices, ALL) or {}
    lines = [
        f"<p><b>Accuracy {_ci(overall['accuracy'], overall['ci_low'], overall['ci_high'])}</b> · macro-F1 "
        f"{_ci(sl.get('macro_f1'), sl.get('macro_f1_low'), sl.get('macro_f1_high'))} · "
        f"{_int(overall['n'])} samples (95% intervals).</p>"
    ]
    # the top priority as `analysis.top_targets(errors, 1, min_size)` picks it: a gap to close, not small
    open_gap = ranked[ranked["priority"].astype(float) > 0]
    actionable = open_gap[~open_gap["small"].astype(bool)]
    if ranked.empty:
        lines.append("<p>No slices were measured besides the whole set.</p>")
    elif open_gap.empty:
        lines.append("<p>Every slice is at or above its baseline level: no slice has a gap to close.</p>")
    elif actionable.empty:
        lines.append("<p>Only small slices (too few samples to act on) are below their baseline level.</p>")
    else:
        top = actionable.iloc[0]
        acc = _ci(top["accuracy"], top["ci_low"], top["ci_high"])
        lines.append(
            f"<p><b>Top priority: {_esc(top['slice'])}</b> — accuracy {acc} against a baseline of "
            f"{_num(top['baseline'])}; closing the gap would add {_pts(top['priority'])} accuracy points to the "
            "whole set.</p>"
        )
    if not actionable.empty and open_gap.iloc[0]["slice"] != actionable.iloc[0]["slice"]:
        lines.append(
            f"<p>The small slice {_esc(open_gap.iloc[0]['slice'])} ranks higher "
            f"({_pts(open_gap.iloc[0]['priority'])} points) but has too few samples to act on.</p>"
        )
    if part.targets:
        lines.append("<p>Chosen for augmentation: " + ", ".join(f"<b>{_esc(t)}</b>" for t in part.targets) + ".</p>")
    return '<div class="headline">' + "".join(lines) + "</div>"


def _errors_section(part: ReportPart, ranked: pd.DataFrame, top: int) -> str:
    rows = pd.concat([part.errors[part.errors["slice"] == ALL], ranked.head(top)], ignore_index=True)
    targets = set(part.targets)
    head = [
        ("slice", False),
        ("n", True),
        ("share of data", True),
        ("accuracy [95% CI]", True),
        ("error rate", True),
        ("share of errors", True),
        ("baseline", True),
        ("baseline from", False),
        ("gap", True),
        ("priority (acc. points)", True),
        ("avoidable errors", True),
        ("small", False),
        ("target", False),
    ]
    body = []
    for r in rows.to_dict("records"):
        name = str(r["slice"])
        css = " ".join(
            c for c, on in (("all", name == ALL), ("small", bool(r["small"])), ("target", name in targets)) if on
        )
        body.append(
            (
                [
                    _esc(name),
                    _int(r["n"]),
                    _num(r["share_of_data"]),
                    _ci(r["accuracy"], r["ci_low"], r["ci_high"]),
                    _num(r["error_rate"]),
                    _num(r["share_of_errors"]),
                    _num(r["baseline"]),
                    _esc(r["baseline_source"]),
                    _num(r["gap"], 3),
                    _pts(r["priority"]),
                    _num(r["avoidable_errors"], 0),
                    "small" if r["small"] else "",
                    "yes" if name in targets else "",
                ],
                css,
            )
        )
    hidden = len(ranked) - min(top, len(ranked))
    note = (
        "gap = max(baseline − accuracy, 0); priority = gap × share of data: the accuracy points the whole set "
        "would gain if the slice reached its baseline (slices overlap, so priorities do not add up); avoidable "
        "errors = gap × n. Small slices (grey) have too few samples to act on."
        + (f" {hidden} lower-priority slice(s) not shown." if hidden > 0 else "")
    )
    return _table(head, body, _esc(note))


def _discovered_section(discovered: pd.DataFrame, top: int) -> str:
    if discovered is None or discovered.empty:
        return "<p>No slice is significantly weaker than the rest (false-discovery rate controlled).</p>"
    head = [
        ("slice", False),
        ("n", True),
        ("errors", True),
        ("error rate [95% CI]", True),
        ("rest error rate", True),
        ("lift", True),
        ("q", True),
        ("description", False),
    ]
    body = []
    for r in discovered.head(top).to_dict("records"):
        body.append(
            (
                [
                    _esc(r["slice"]),
                    _int(r.get("n")),
                    _int(r.get("errors")),
                    _ci(r.get("error_rate"), r.get("ci_low"), r.get("ci_high")),
                    _num(r.get("rest_error_rate")),
                    _num(r.get("lift")),
                    _q(r.get("q")),
                    _esc("" if _missing(r.get("description")) else r["description"]),
                ],
                "",
            )
        )
    hidden = len(discovered) - min(top, len(discovered))
    note = (
        "Groups of samples nobody named in advance whose error rate is significantly above the rest of the set "
        "(cluster-robust test; q: Benjamini–Hochberg false-discovery-rate adjusted p-value). lift = error rate / "
        "rest error rate." + (f" {hidden} more not shown." if hidden > 0 else "")
    )
    return _table(head, body, _esc(note))


def _q(x: object) -> str:
    if _missing(x):
        return DASH
    v = float(x)  # type: ignore[arg-type]
    return f"{v:.2g}" if v >= 0.001 else f"{v:.1e}"


def _classes_section(classes: pd.DataFrame, labels: list[str]) -> str:
    rows = classes[classes["slice"] == ALL] if not classes.empty else classes
    if rows.empty:
        return "<p>No per-class scores.</p>"
    order = {label: k for k, label in enumerate(labels)}
    rows = rows.assign(_k=rows["class"].astype(str).map(order).fillna(len(order))).sort_values(["_k"], kind="stable")
    head = [
        ("class", False),
        ("support", True),
        ("precision [95% CI]", True),
        ("recall [95% CI]", True),
        ("F1 [95% CI]", True),
    ]
    body = [
        (
            [_esc(r["class"]), _int(r["support"])]
            + [_ci(r[m], r[f"{m}_low"], r[f"{m}_high"]) for m in ("precision", "recall", "f1")],
            "",
        )
        for r in rows.to_dict("records")
    ]
    return _table(head, body)


def _focus_section(part: ReportPart, top: int) -> str:
    focus = _esc(part.focus)
    if not {"fpr", "fnr"} <= set(part.slices.columns):
        return f"<p>The slice table has no false-positive / false-negative rates for class <b>{focus}</b>.</p>"
    rows = part.slices
    is_all = rows["slice"] == ALL
    rest = rows[~is_all].assign(_fnr=rows["fnr"].fillna(-1.0), _fpr=rows["fpr"].fillna(-1.0))
    rest = rest.sort_values(["_fnr", "_fpr", "slice"], ascending=[False, False, True], kind="stable")
    shown = pd.concat([rows[is_all], rest.head(top)], ignore_index=True)
    head = [
        ("slice", False),
        ("n", True),
        ("false-positive rate [95% CI]", True),
        ("false-negative rate [95% CI]", True),
        ("small", False),
    ]
    body = [
        (
            [
                _esc(r["slice"]),
                _int(r["n"]),
                _ci(r["fpr"], r["fpr_low"], r["fpr_high"]),
                _ci(r["fnr"], r["fnr_low"], r["fnr_high"]),
                "small" if r.get("small") else "",
            ],
            " ".join(c for c, on in (("all", r["slice"] == ALL), ("small", bool(r.get("small")))) if on),
        )
        for r in shown.to_dict("records")
    ]
    hidden = len(rest) - min(top, len(rest))
    note = (
        f"False-positive rate = samples of other classes predicted as '{part.focus}' / samples of other classes; "
        f"false-negative rate = samples of class '{part.focus}' predicted as another / samples of class "
        f"'{part.focus}'. Slices by false-negative rate, "
        "highest first; – where a slice has no sample to measure it on."
        + (f" {hidden} more slice(s) not shown." if hidden > 0 else "")
    )
    return _table(head, body, _esc(note))


def _ordered(parts: dict[str, ReportPart]) -> list[str]:
    return [k for k in ORDER if k in parts] + [k for k in parts if k not in ORDER]


def _part_section(key: str, anchor: str, part: ReportPart, labels: list[str], top: int) -> tuple[str, list[str]]:
    """The HTML of one evaluation set and its table-of-contents entries."""
    name = _esc(key)
    ranked = part.errors[part.errors["slice"] != ALL]
    subsections = [
        ("slices", "Accuracy per slice"),
        ("errors", "Error analysis"),
        ("discovered", "Discovered weak slices"),
        ("confusion", "Confusion matrix"),
        ("classes", "Per-class scores"),
    ]
    if part.focus is not None:
        subsections.append(("focus", f"Errors of class {part.focus}"))
    out = [f'<section id="{anchor}"><h2>{name}</h2>', _headline(part, ranked)]

    shown = pd.concat([part.errors[part.errors["slice"] == ALL], ranked.head(top)], ignore_index=True)
    uri = _accuracy_figure(shown, set(part.targets), f"{key}: accuracy of the top {len(shown) - 1} slices by priority")
    out.append(f'<h3 id="{anchor}-slices">Accuracy per slice</h3>')
    out.append(f'<img src="{uri}" alt="{name}: accuracy per slice with 95% intervals and baseline levels">')
    out.append(
        '<p class="note">Slices ranked by priority, "all" on top; red marks are each slice\'s baseline level; '
        "hatched light bars are small slices; * marks slices chosen for augmentation.</p>"
    )
    out.append(f'<h3 id="{anchor}-errors">Error analysis</h3>' + _errors_section(part, ranked, top))
    out.append(f'<h3 id="{anchor}-discovered">Discovered weak slices</h3>' + _discovered_section(part.discovered, top))

    cm = _confusion_matrix(part.confusion, labels)
    out.append(f'<h3 id="{anchor}-confusion">Confusion matrix</h3>')
    out.append(
        f'<img src="{confusion_figure(cm, labels, f"{key}: confusion matrix (all)")}" '
        f'alt="{name}: confusion matrix of all samples">'
    )
    counts = "counts in the cells (empty: none); " if len(labels) <= ANNOTATE_MAX else ""
    out.append(f'<p class="note">Rows: true class; columns: predicted; {counts}colour: share of the true class.</p>')
    out.append(f'<h3 id="{anchor}-classes">Per-class scores</h3>' + _classes_section(part.classes, labels))
    if part.focus is not None:
        out.append(f'<h3 id="{anchor}-focus">Errors of class {_esc(part.focus)}</h3>' + _focus_section(part, top))
    out.append("</section>")
    toc = [f'<li><a href="#{anchor}-{sub}">{_esc(title)}</a></li>' for sub, title in subsections]
    return "".join(out), toc


def analysis_report(title: str, parts: dict[str, ReportPart], labels: list[str], *, top: int = 25) -> str:
    """The error-analysis report of one data set as a self-contained HTML page (no network, figures embedded).

    `parts`: evaluation set name ("dev", "test") -> its tables, dev first then test in the page; `labels`: the
    classes in the order the confusion matrix and per-class table show them; `top`: how many slices each table
    and figure shows, by priority. The same inputs give the same bytes.
    """
    if not parts:
        raise ValueError("analysis_report: no evaluation set to report")
    if top < 1:
        raise ValueError(f"analysis_report: top must be at least 1, not {top}")
    labels = [str(x) for x in labels]
    sections, toc = [], []
    for k, key in enumerate(_ordered(parts)):
        anchor = f"part-{k}"
        section, entries = _part_section(key, anchor, parts[key], labels, top)
        sections.append(section)
        toc.append(f'<li><a href="#{anchor}">{_esc(key)}</a><ul>{"".join(entries)}</ul></li>')
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{_esc(title)}</h1>"
        '<p class="note">Error analysis per evaluation set. Intervals are 95% cluster-bootstrap intervals (samples '
        "from one source are resampled together). This page is self-contained: it loads nothing from the network."
        "</p>"
        f"<nav><b>Contents</b><ul>{''.join(toc)}</ul></nav>" + "".join(sections) + "</body></html>\n"
    )
