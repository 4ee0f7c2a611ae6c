"""A self-contained HTML gallery of checklist verdicts, so a person can check that the checklist agrees with
their eyes and ears: per target slice and verdict, a few candidates with thumbnails or audio players and
their scores. Media are embedded as data URIs; the page loads nothing from the network."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
from PIL import Image

from curation.checklist import VERDICTS

STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h2{margin-top:2rem;border-bottom:1px solid #ccc}
.grid{display:flex;flex-wrap:wrap;gap:.6rem}
.card{border:1px solid #ddd;border-radius:6px;padding:.4rem;width:190px;font-size:12px}
.card img{width:96px;height:96px;image-rendering:pixelated;display:block}
.card audio{width:180px}
.accept{border-color:#2a8}.review{border-color:#e90}.reject{border-color:#c33}.easy{border-color:#999}
"""


def media_uri(x: np.ndarray, modality: str, media_cfg: dict[str, Any]) -> str:
    """A data URI holding the sample as PNG or 16-bit WAV."""
    buf = io.BytesIO()
    if modality == "image":
        Image.fromarray(np.asarray(x, dtype=np.uint8)).save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    sf.write(buf, np.clip(x, -1, 1), media_cfg["sample_rate"], subtype="PCM_16", format="WAV")
    return "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()


def _card(r: Any, modality: str, media_cfg: dict[str, Any], load: Callable[[str], np.ndarray]) -> str:
    uri = media_uri(load(r.path), modality, media_cfg)
    tag = f'<img src="{uri}" alt="">' if modality == "image" else f'<audio controls src="{uri}"></audio>'
    return (
        f'<div class="card {r.verdict}">{tag}<b>{html.escape(str(r.label))}</b> · {html.escape(r.verdict)}<br>'
        f"realism {r.realism:.2f} · clarity {r.clarity:.2f} · weakness {r.weakness:.2f}<br>"
        f"<i>{html.escape(r.reason)}</i><br><small>{html.escape(r.id)}</small></div>"
    )


def gallery_html(
    judged: pd.DataFrame,
    modality: str,
    media_cfg: dict[str, Any],
    load: Callable[[str], np.ndarray],
    per_group: int = 8,
) -> str:
    """The gallery page: for each target slice and verdict, the first `per_group` candidates by id."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Checklist gallery</title><style>{STYLE}"]
    parts.append("</style></head><body><h1>Checklist verdicts</h1>")
    counts = judged.groupby(["target_slice", "verdict"]).size()
    for target in sorted(judged["target_slice"].unique()):
        parts.append(f"<h2>{html.escape(target)}</h2>")
        for verdict in VERDICTS:
            group = judged[(judged["target_slice"] == target) & (judged["verdict"] == verdict)].sort_values("id")
            if group.empty:
                continue
            total = int(counts.get((target, verdict), 0))
            parts.append(f"<h3>{verdict}: {total}</h3><div class='grid'>")
            parts += [_card(r, modality, media_cfg, load) for r in group.head(per_group).itertuples()]
            parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
