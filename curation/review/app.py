"""The review web app (Starlette, served by uvicorn): one page, a JSON API, and the queue's files.

Safety: the server binds 127.0.0.1 unless told otherwise and answers only to the host names it is bound to
(no DNS rebinding); with a token every request needs it (`?token=` once sets a cookie); decisions are posted
as JSON only (a cross-site form cannot post one); only the queue's and the label book's files are served, from
inside the served folders, anything else is 404; the page builds every label, note and file name as text
(`textContent`), never as HTML, under a Content-Security-Policy that allows no inline or outside script.
"""

from __future__ import annotations

import hmac
import io
import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import torch
from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from curation.features import log_mel
from curation.media import MediaError, load_audio
from curation.review.agreement import agreement_table
from curation.review.queue import NoSuchItem, ReviewError, ReviewQueue
from curation.review.store import ReviewStore

TOKEN_COOKIE = "review_token"
MAX_LABELER = 64  # characters in a labeler's name
MAX_NOTE = 2000  # characters in a note
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = files("curation.review") / "static"


class _Security(BaseHTTPMiddleware):
    """The token check (when one is set) and the security headers on every response."""

    def __init__(self, app: Any, token: str | None) -> None:
        super().__init__(app)
        self.token = token

    def _authorised(self, request: Request) -> bool:
        if self.token is None:
            return True
        given = request.cookies.get(TOKEN_COOKIE) or request.headers.get("authorization", "").removeprefix("Bearer ")
        return hmac.compare_digest(given.encode(), self.token.encode())

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        query_token = request.query_params.get("token")
        if self.token is not None and query_token is not None and request.url.path == "/":
            if not hmac.compare_digest(query_token.encode(), self.token.encode()):
                response: Response = PlainTextResponse("wrong access token", status_code=401)
            else:
                response = RedirectResponse("/", status_code=303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
        elif not self._authorised(request):
            response = PlainTextResponse("access token required: open the link `curate review serve` printed", 401)
        else:
            response = await call_next(request)
        response.headers.update(HEADERS)
        return response


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _labeler(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise ReviewError("a labeler name is required")
    if len(name) > MAX_LABELER:
        raise ReviewError(f"labeler name longer than {MAX_LABELER} characters")
    return name


async def _json_body(request: Request) -> dict[str, Any]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise ReviewError("send the request as application/json")
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReviewError(f"request body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ReviewError("request body must be a JSON object")
    return body


def spectrogram_png(samples: np.ndarray, media_cfg: dict[str, Any]) -> bytes:
    """The log-mel spectrogram of a clip as a PNG (low frequencies at the bottom), for the page."""
    mel = log_mel(
        torch.from_numpy(samples)[None],
        media_cfg["sample_rate"],
        media_cfg["n_fft"],
        media_cfg["hop"],
        media_cfg["n_mels"],
    )[0].numpy()
    lo, hi = np.percentile(mel, [1, 99.5])
    scaled = np.clip((mel - lo) / max(hi - lo, 1e-6), 0, 1)[::-1]
    rgba = matplotlib.colormaps["magma"](scaled, bytes=True)
    buf = io.BytesIO()
    Image.fromarray(rgba[:, :, :3]).save(buf, format="PNG")
    return buf.getvalue()


def create_app(
    queue: ReviewQueue,
    store: ReviewStore,
    *,
    dataset: str,
    media_cfg: dict[str, Any],
    seed: int,
    blind: bool = False,
    token: str | None = None,
    allowed_hosts: list[str] | None = None,
) -> Starlette:
    """The review app for one data set's queue and store."""

    @lru_cache(maxsize=256)
    def spectrogram(path: Path) -> bytes:
        return spectrogram_png(load_audio(path, media_cfg["sample_rate"]), media_cfg)

    def mine(labeler: str) -> dict[str, dict[str, Any]]:
        cur = store.current(queue.paths)  # a decision on an older file of a sample is to be made again
        cur = cur[cur["labeler"] == labeler]
        return {
            r.sample_id: {"decision": r.decision, "label": None if blind else r.label, "note": r.note}
            for r in cur.itertuples()
        }

    async def index(request: Request) -> Response:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html; charset=utf-8")

    async def config(request: Request) -> Response:
        f = queue.frame
        return JSONResponse(
            {
                "dataset": dataset,
                "modality": queue.modality,
                "labels": queue.labels,
                "blind": blind,
                "total": len(queue),
                "ids": f["id"].tolist(),
                "slices": sorted(f["slice"].unique().tolist()),
                "reasons": sorted(f["reason_kind"].unique().tolist()),
                "book": queue.book,
            }
        )

    async def items(request: Request) -> Response:
        labeler = _labeler(request.query_params.get("labeler"))
        chosen = queue.select(request.query_params.get("slice") or None, request.query_params.get("reason") or None)
        decided = await run_in_threadpool(mine, labeler)
        ids = [queue.items[i]["id"] for i in chosen]
        return JSONResponse(
            {
                "indices": chosen,
                "decided": [i for i, sid in zip(chosen, ids, strict=True) if sid in decided],
                "decided_total": len(decided),
                "total": len(queue),
            }
        )

    async def item(request: Request) -> Response:
        labeler = _labeler(request.query_params.get("labeler"))
        try:
            index_ = int(request.path_params["index"])
        except ValueError:
            return _error("item index must be a number", 404)
        view = queue.view(index_, blind)
        return JSONResponse(view | {"mine": (await run_in_threadpool(mine, labeler)).get(view["id"])})

    async def decide(request: Request) -> Response:
        body = await _json_body(request)
        labeler = _labeler(body.get("labeler"))
        note = str(body.get("note") or "")
        if len(note) > MAX_NOTE:
            raise ReviewError(f"note longer than {MAX_NOTE} characters")
        decision, label = queue.resolve_decision(
            str(body.get("sample_id", "")), str(body.get("decision", "")), body.get("label"), blind
        )
        request_id = body.get("request_id")
        stored = await run_in_threadpool(
            store.decide,
            str(body["sample_id"]),
            labeler,
            decision,
            label,
            note,
            blind,
            None if request_id is None else str(request_id),
            queue.path_of(str(body["sample_id"])),
        )
        return JSONResponse({"stored": stored.to_dict()})

    async def undo(request: Request) -> Response:
        body = await _json_body(request)
        undone = await run_in_threadpool(store.undo, _labeler(body.get("labeler")), queue.paths)
        return JSONResponse({"undone": None if undone is None else undone.to_dict()})

    async def agreement(request: Request) -> Response:
        table = await run_in_threadpool(lambda: agreement_table(store.current(queue.paths), queue.frame, seed))
        return JSONResponse({"slices": json.loads(table.to_json(orient="records"))})

    async def media(request: Request) -> Response:
        name, rel = request.path_params["root"], request.path_params["path"]
        if (name, rel) not in queue.files:
            return PlainTextResponse("not found", status_code=404)
        try:
            path = queue.roots.resolve(name, rel)
        except MediaError:
            return PlainTextResponse("not found", status_code=404)
        if request.query_params.get("view") == "spectrogram":
            if queue.modality != "audio":
                return PlainTextResponse("not found", status_code=404)
            return Response(await run_in_threadpool(spectrogram, path), media_type="image/png")
        return FileResponse(path)

    async def review_error(request: Request, exc: Exception) -> Response:
        return _error(str(exc), 404 if isinstance(exc, NoSuchItem) else 422)

    hosts = allowed_hosts or list(LOOPBACK_HOSTS)
    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/config", config),
            Route("/api/items", items),
            Route("/api/items/{index}", item),
            Route("/api/decisions", decide, methods=["POST"]),
            Route("/api/undo", undo, methods=["POST"]),
            Route("/api/agreement", agreement),
            Route("/files/{root}/{path:path}", media),
            Mount("/static", StaticFiles(directory=str(STATIC)), name="static"),
        ],
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=hosts), Middleware(_Security, token=token)],
        exception_handlers={ReviewError: review_error},
    )
