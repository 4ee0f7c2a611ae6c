"""A self-contained HTML report comparing versions of a data set on the same test samples.

One offline file, as `curation.report`: inline stylesheet, figures as PNG data URIs, test samples as PNG or
WAV data URIs, no scripts, every text from the data escaped. It shows the audit gate's verdict, the per-slice
table of `curation.compare` (accuracy per version, paired delta against the first with its interval, McNemar
p), the per-slice accuracies with their intervals as bars, the confusion matrices side by side, per slice a
few test samples that changed from wrong to right and from right to wrong between the first and the last
version, and what each version is: its commit, its version card and the params that differ between them.
"""

from __future__ import annotations

import html
import json
import tempfile
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from curation.compare import align, draw_comparison
from curation.conditions import load_sample
from curation.gallery import media_uri
from curation.media import MediaError
from curation.report import STYLE as REPORT_STYLE
from curation.report import confusion_figure, figure_uri
from curation.revisions import RevisionError, VersionData
from curation.slices import slice_mask

STYLE = (
    REPORT_STYLE
    + """
.row{display:flex;flex-wrap:wrap;gap:.8rem;align-items:flex-start}
.row figure{margin:0;flex:1 1 300px;max-width:520px}
.fail{background:#fbeaea;border-left:4px solid #c0392b;padding:.6rem 1rem}
.pass{background:#eaf6ee;border-left:4px solid #2a8a4a;padding:.6rem 1rem}
tr.protected td:first-child{font-weight:600}
table.slices td:first-child{white-space:nowrap;max-width:none}
.scroll{overflow-x:auto}
td.regression{background:#f6caca}
td.sig{font-weight:600}
.sample{border:1px solid #ddd;border-radius:6px;padding:.4rem;width:200px;font-size:12px;overflow-wrap:anywhere}
.sample img{width:96px;height:96px;image-rendering:pixelated;display:block}
.sample audio{width:190px}
.ok{color:#2a8a4a}.bad{color:#c0392b}
pre{background:#f6f6f6;padding:.5rem;overflow-x:auto;font-size:.8rem}
"""
)


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _ci(row: dict[str, Any], point: str, low: str, high: str, sign: str = "") -> str:
    return f"{row[point]:{sign}.3f} [{row[low]:{sign}.3f}, {row[high]:{sign}.3f}]"


def _slice_table(
    table: pd.DataFrame, names: list[str], protected: Collection[str], regressed: Collection[tuple[str, str]]
) -> str:
    head = ["slice", "n", *(f"accuracy {v} [95% CI]" for v in names)]
    head += [f"Δ {v} vs {names[0]} [95% CI]" for v in names[1:]] + [f"McNemar p {v}" for v in names[1:]]
    out = ['<div class="scroll"><table class="slices"><thead><tr>', *(f"<th>{_esc(h)}</th>" for h in head)]
    out.append("</tr></thead><tbody>")
    for r in table.to_dict("records"):
        css = "protected" if r["slice"] in protected else ""
        name = ("* " if r["targeted"] else "") + r["slice"] + (" (protected)" if css else "")
        cells = [f'<td class="text">{_esc(name)}</td>', f'<td class="num">{r["n"]}</td>']
        cells += [f'<td class="num">{_ci(r, f"acc_{v}", f"ci_low_{v}", f"ci_high_{v}")}</td>' for v in names]
        for v in names[1:]:
            mark = " !" if r[f"significant_{v}"] else ""
            cell_css = "num regression" if (r["slice"], v) in regressed else ("num sig" if mark else "num")
            delta = _ci(r, f"delta_{v}", f"delta_low_{v}", f"delta_high_{v}", "+")
            cells.append(f'<td class="{cell_css}">{delta}{mark}</td>')
        cells += [f'<td class="num">{r[f"p_{v}"]:.3g}</td>' for v in names[1:]]
        out.append(f'<tr class="{css}">' + "".join(cells) + "</tr>")
    out.append("</tbody></table></div>")
    out.append(
        '<p class="note">Sorted by the largest significant change. *: slice targeted by augmentation. !: significant '
        "change against the first version (McNemar p &lt; 0.05, clustered by source, and the paired bootstrap interval "
        "excludes 0). Red: a protected slice's significant drop beyond the audit tolerance.</p>"
    )
    return "".join(out)


def _sample_uri(data: bytes, path: str, modality: str, media_cfg: dict[str, Any]) -> str:
    """A test sample's bytes decoded as the pipeline decodes them, as a PNG or WAV data URI."""
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / ("sample" + Path(path).suffix)
        local.write_bytes(data)
        try:
            x = load_sample(str(local), modality, media_cfg)
        except MediaError as exc:
            raise MediaError(path, exc.reason) from exc
    return media_uri(x, modality, media_cfg)


def _sample_card(rows: list[pd.Series], names: list[str], modality: str, media: Callable[[str, Any], str]) -> str:
    first = rows[0]
    try:
        uri = media(str(first["path"]), first.get("sha256"))
        tag = f'<img src="{uri}" alt="">' if modality == "image" else f'<audio controls src="{uri}"></audio>'
    except (RevisionError, MediaError) as exc:  # shown without its media, saying why
        tag = f'<span class="note">no media: {_esc(exc)}</span>'
    preds = "".join(
        f'<br>{_esc(name)}: <span class="{"ok" if r["correct"] else "bad"}">{_esc(r["pred"])} '
        f"{'✓' if r['correct'] else '✗'}</span>"
        for name, r in zip(names, rows, strict=True)
    )
    return f'<div class="sample">{tag}<b>{_esc(first["id"])}</b><br>label {_esc(first["label"])}{preds}</div>'


def _changed_section(
    table: pd.DataFrame,
    aligned: list[pd.DataFrame],
    names: list[str],
    modality: str,
    media: Callable[[str, Any], str],
    examples: int,
) -> str:
    first, last = aligned[0], aligned[-1]
    before, after = first["correct"].to_numpy(dtype=bool), last["correct"].to_numpy(dtype=bool)
    out = [f"<h2>Test samples that changed, {_esc(names[0])} → {_esc(names[-1])}</h2>"]
    out.append(f'<p class="note">Per slice and direction, {examples} samples spread evenly over the changed ones '
               "in id order, with every version's prediction.</p>")  # fmt: skip
    for name in table["slice"]:
        mask = slice_mask(first, name).to_numpy()
        out.append(f"<h3>{_esc(name)}</h3>")
        for title, changed in (("wrong → right", mask & ~before & after), ("right → wrong", mask & before & ~after)):
            index = np.flatnonzero(changed)
            out.append(f"<h4>{title}: {index.size}</h4>")
            if index.size:
                shown = index[np.unique(np.linspace(0, index.size - 1, min(examples, index.size)).round().astype(int))]
                cards = [_sample_card([p.iloc[i] for p in aligned], names, modality, media) for i in shown]
                out.append('<div class="row">' + "".join(cards) + "</div>")
    return "".join(out)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        return {k: v for key, sub in value.items() for k, v in _flat(sub, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): value}


def _versions_section(versions: list[VersionData]) -> str:
    out = ["<h2>The versions</h2>"]
    for v in versions:
        out.append(f"<h3>{_esc(v.ref.name)}</h3><p>revision {_esc(v.ref.rev)}, commit <code>{_esc(v.commit)}</code>")
        card = v.card
        if card is None:
            out.append("; no version card at this revision.</p>")
            continue
        splits = ", ".join(f"{_esc(k)} {_esc(n)}" for k, n in card.get("per_split", {}).items())
        out.append(
            f"; content md5 <code>{_esc(card.get('content_md5'))}</code>, code <code>"
            f"{_esc(card.get('git_revision') or 'unknown')}</code>; {_esc(card.get('samples'))} samples ({splits}).</p>"
        )
        changes = json.dumps(card.get("changes"), indent=2, sort_keys=True)
        out.append(f"<details><summary>changes against the parent</summary><pre>{_esc(changes)}</pre></details>")
    flat = [_flat(v.params) for v in versions]
    keys = sorted(set().union(*flat))
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]
    if not differ:
        out.append("<p>The versions share the data set's params.</p>")
        return "".join(out)
    out.append("<h3>Params that differ</h3><table><thead><tr><th>param</th>")
    out += [f"<th>{_esc(v.ref.name)}</th>" for v in versions] + ["</tr></thead><tbody>"]
    for k in differ:
        cells = "".join(f'<td class="text">{_esc(json.dumps(f.get(k), sort_keys=True))}</td>' for f in flat)
        out.append(f'<tr><td class="text">{_esc(k)}</td>{cells}</tr>')
    out.append("</tbody></table>")
    return "".join(out)


def comparison_html(
    dataset: str,
    table: pd.DataFrame,
    versions: list[VersionData],
    labels: list[str],
    modality: str,
    media_cfg: dict[str, Any],
    read_sample: Callable[[str, str | None], bytes],
    *,
    protected: Sequence[str] = (),
    regressed: Collection[tuple[str, str]] = (),
    failures: Sequence[str] = (),
    examples: int = 3,
) -> str:
    """The report page. `table`: `compare.compare_versions` of the versions' predictions (in the order to
    show, e.g. `compare.rank_by_change`); `read_sample(path, sha256)`: a test sample's file bytes; `failures`:
    the audit gate's messages."""
    names = [v.ref.name for v in versions]
    aligned = list(align({v.ref.name: v.predictions for v in versions}).values())
    uris: dict[str, str] = {}

    def media(path: str, sha256: Any) -> str:
        if path not in uris:
            uris[path] = _sample_uri(read_sample(path, sha256), path, modality, media_cfg)
        return uris[path]

    title = f"{dataset}: {len(names)} versions compared on the same test samples"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{_esc(title)}</title>"]
    parts.append(f"<style>{STYLE}</style></head><body><h1>{_esc(title)}</h1>")
    parts.append("<p>" + " · ".join(f"<b>{_esc(n)}</b> <code>{_esc(v.commit[:12])}</code>"
                                    for n, v in zip(names, versions, strict=True)) + "</p>")  # fmt: skip
    if failures:
        items = "".join(f"<li>{_esc(f)}</li>" for f in failures)
        parts.append(f'<div class="fail"><b>Audit gate failed</b><ul>{items}</ul></div>')
    elif protected:
        parts.append(f'<div class="pass">Audit gate passed for {_esc(", ".join(protected))}.</div>')
    parts.append("<h2>Accuracy per slice</h2>" + _slice_table(table, names, protected, regressed))
    bars = figure_uri(lambda plt: draw_comparison(plt, table, names, f"{dataset}: test accuracy per slice"))
    parts.append(f'<img src="{bars}" alt="per-slice accuracy of every version with 95% intervals">')
    parts.append('<h2>Confusion matrices (all test samples)</h2><div class="row">')
    for name, pred in zip(names, aligned, strict=True):
        cm = confusion_matrix(pred["label"].astype(str), pred["pred"].astype(str), labels=labels)
        uri = confusion_figure(cm, labels, name)
        parts.append(f'<figure><img src="{uri}" alt="confusion matrix of {_esc(name)}"></figure>')
    parts.append("</div>")
    parts.append(_changed_section(table, aligned, names, modality, media, examples))
    parts.append(_versions_section(versions))
    parts.append("</body></html>")
    return "\n".join(parts)
