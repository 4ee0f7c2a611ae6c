"""Training: a seeded, deterministic loop with early stopping, prediction, embeddings, model files and a sanity
overfit.

Determinism without side effects: the network is initialised and trained inside `torch.random.fork_rng()`
seeded from the pipeline seed, and batches are shuffled with a private `torch.Generator`; the caller's global
RNG state is restored afterwards. The same seed and data give byte-identical model files (same machine and
torch build: CPU kernels may differ across builds and thread counts).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import math
import os
import pickle
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.fusion import fuse_conv_bn_eval
from tqdm import tqdm

from augment.rng import derive_seed, generator
from curation.io import write_bytes
from curation.models import SmallCNN, build_model

MODEL_FORMAT = "curation-model/1"
EVAL_BATCH = 64  # samples per inference pass: ~1.8x faster than 256 on this CPU (cache-sized), the same numbers
SCHEDULES = ("constant", "cosine")  # train.schedule: the learning rate throughout, or cosine-annealed to 0 per step
KEEP = ("best", "last")  # train.keep: the lowest-dev-loss epoch (early stopping), or the last of a fixed run


class TrainingError(ValueError):
    """Training that cannot produce a usable model (a class without samples, divergence, or a network that
    cannot even fit a handful of samples). A ValueError like the project's other errors, so `curate` reports
    it in one line."""


@dataclass
class TrainResult:
    """A trained model (the best epoch's weights, in eval mode), its label order and the per-epoch history.

    Epochs are counted from 0, so `history[best_epoch]` is the kept epoch. Each history entry: epoch,
    train_loss, dev_loss, dev_accuracy, best_epoch (the best so far).
    """

    model: SmallCNN
    labels: list[str]
    history: list[dict[str, float | int]]
    best_epoch: int
    modality: str
    cfg: dict[str, Any] = field(repr=False)


def _as_inputs(x: Tensor | np.ndarray, what: str) -> Tensor:
    """Inputs as a float32 tensor, refusing empty sets."""
    t = torch.as_tensor(x, dtype=torch.float32)
    if t.dim() < 2 or t.shape[0] == 0:
        raise ValueError(f"{what}: expected a non-empty batch of inputs, got shape {tuple(t.shape)}")
    return t


def _as_targets(y: Tensor | np.ndarray, n: int, n_classes: int, what: str) -> Tensor:
    """Class indices as int64, one per input, each in [0, n_classes)."""
    try:
        t = torch.tensor(np.asarray(y, dtype=np.int64)).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: expected integer class indices: {exc}") from exc
    if t.shape[0] != n:
        raise ValueError(f"{what}: {t.shape[0]} targets for {n} inputs")
    bad = torch.nonzero((t < 0) | (t >= n_classes)).flatten().tolist()
    if bad:
        raise ValueError(f"{what}: target(s) at position(s) {bad[:10]} are outside 0..{n_classes - 1}")
    return t


def _class_weights(y: Tensor, labels: list[str]) -> Tensor:
    """Inverse-frequency weights n / (C * n_c), so every class carries the same total weight."""
    counts = torch.bincount(y, minlength=len(labels)).double()
    missing = [labels[i] for i in torch.nonzero(counts == 0).flatten().tolist()]
    if missing:
        raise TrainingError(f"class weighting: label(s) {missing} have no training samples")
    return (counts.sum() / (len(labels) * counts)).float()


def _evaluate(model: nn.Module, x: Tensor, y: Tensor, weight: Tensor | None) -> tuple[float, float]:
    """(mean loss, accuracy) in eval mode; the loss is weighted like the training loss."""
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, x.shape[0], EVAL_BATCH):
            logits = model(x[i : i + EVAL_BATCH])
            yb = y[i : i + EVAL_BATCH]
            loss_sum += float(F.cross_entropy(logits, yb, weight=weight, reduction="sum"))
            correct += int((logits.argmax(dim=1) == yb).sum())
    denom = float(weight[y].sum()) if weight is not None else float(y.shape[0])
    return loss_sum / denom, correct / y.shape[0]


def train_model(
    x_train: Tensor | np.ndarray,
    y_train: Tensor | np.ndarray,
    x_dev: Tensor | np.ndarray,
    y_dev: Tensor | np.ndarray,
    labels: list[str],
    modality: str,
    cfg: dict[str, Any],
    seed: int,
    progress: bool = True,
) -> TrainResult:
    """Train `build_model(modality, len(labels), cfg)` with AdamW and early stopping on the dev loss.

    x_*: what `features.load_inputs` returns; y_*: class indices into `labels`. `cfg`: the params' train
    settings {epochs, batch_size, lr, weight_decay, patience, class_weighting} plus the media settings under
    "media" or the modality's name (`features.media_config`). With class weighting, train and dev losses are
    both weighted by inverse class frequency in train, so the stopping rule watches what is optimised.
    Training stops after `patience` epochs without a lower dev loss; the best epoch's weights are kept. With
    `keep: last` every epoch runs and the last one's weights are kept: a fixed recipe whose result does not
    hinge on one noisy dev-loss minimum (an augmented set's dev loss can bottom out early while its accuracy
    still climbs), which comparisons across data versions need; pair it with `schedule: cosine`, which anneals
    the learning rate to 0 over the run so that the last epoch is not a step taken at full rate.
    The image network's input standardisation is fitted to x_train before the first step (and saved with it).
    """
    xt, xd = _as_inputs(x_train, "train inputs"), _as_inputs(x_dev, "dev inputs")
    yt = _as_targets(y_train, xt.shape[0], len(labels), "train targets")
    yd = _as_targets(y_dev, xd.shape[0], len(labels), "dev targets")
    weight = _class_weights(yt, labels) if cfg.get("class_weighting", False) else None
    epochs, batch_size, patience = int(cfg["epochs"]), int(cfg["batch_size"]), int(cfg["patience"])
    keep = cfg.get("keep", "best")
    if keep not in KEEP:
        raise ValueError(f"train.keep must be one of {KEEP}, got {keep!r}")
    schedule = cfg.get("schedule", "constant")
    if schedule not in SCHEDULES:
        raise ValueError(f"train.schedule must be one of {SCHEDULES}, got {schedule!r}")
    shuffle = torch.Generator().manual_seed(derive_seed(seed, "train", "shuffle"))
    history: list[dict[str, float | int]] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "train", "init"))
        model = build_model(modality, len(labels), cfg)
        model.fit_input_stats(xt)
        opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=float(cfg["weight_decay"]))
        steps = epochs * math.ceil(xt.shape[0] / batch_size)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps) if schedule == "cosine" else None
        best_loss, best_epoch, best_state = float("inf"), 0, None
        bar = tqdm(range(epochs), desc=f"train {modality}", unit="epoch", disable=not progress or None)
        for epoch in bar:
            model.train()
            order = torch.randperm(xt.shape[0], generator=shuffle)
            loss_sum = 0.0
            for start in range(0, xt.shape[0], batch_size):
                idx = order[start : start + batch_size]
                loss = F.cross_entropy(model(xt[idx]), yt[idx], weight=weight)
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"training loss became {float(loss.detach())} at epoch {epoch}, "
                        f"batch from sample {start}; lower the learning rate "
                        f"({cfg['lr']}) or check the inputs"
                    )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                loss_sum += float(loss.detach()) * idx.shape[0]
            dev_loss, dev_acc = _evaluate(model, xd, yd, weight)
            if dev_loss < best_loss or keep == "last":
                best_loss, best_epoch = dev_loss, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history.append(
                {
                    "epoch": epoch,
                    "train_loss": loss_sum / xt.shape[0],
                    "dev_loss": dev_loss,
                    "dev_accuracy": dev_acc,
                    "best_epoch": best_epoch,
                }
            )
            bar.set_postfix(
                train_loss=f"{loss_sum / xt.shape[0]:.3f}", dev_loss=f"{dev_loss:.3f}", dev_acc=f"{dev_acc:.3f}"
            )
            if epoch - best_epoch >= patience:
                break
    if best_state is None:
        raise TrainingError(f"no epoch gave a finite dev loss in {epochs} epoch(s)")
    model.load_state_dict(best_state)
    model.eval()
    return TrainResult(
        model=model, labels=list(labels), history=history, best_epoch=best_epoch, modality=modality, cfg=cfg
    )


def _fold_batch_norms(module: nn.Module) -> None:
    """Fold every BatchNorm2d that directly follows a Conv2d in an nn.Sequential into that convolution (in
    eval mode a BatchNorm is an affine map per channel, so the pair is one convolution with new weights and a
    bias); the BatchNorm becomes an Identity. For inference copies only: training needs the BatchNorm."""
    for child in [m for m in module.modules() if isinstance(m, nn.Sequential)]:  # listed before any is changed
        layers = list(child)
        for k in range(len(layers) - 1):
            conv, norm = layers[k], layers[k + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and norm.track_running_stats:
                child[k] = fuse_conv_bn_eval(conv, norm)
                child[k + 1] = nn.Identity()


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of the model for prediction, with each convolution's BatchNorm folded into it and the
    weights in channels-last memory format: the same numbers within float rounding (~1e-6 relative) about
    three times as fast on this CPU (channels-last convolutions twice; the folded BatchNorms took a third of
    what was left). The model itself (its mode, its weights and their layout, hence what `save_model` writes)
    is untouched."""
    network = copy.deepcopy(model).eval()
    _fold_batch_norms(network)
    return network.to(memory_format=torch.channels_last)


def run_batches(
    network: nn.Module, x: Tensor | np.ndarray, fn: Callable[[nn.Module, Tensor], Tensor], batch_size: int
) -> np.ndarray:
    """`fn(network, batch)` over `x` in batches without gradients, concatenated; `network` as `inference_copy`
    makes it (a caller predicting many batches with one model copies it once)."""
    xt = _as_inputs(x, "prediction inputs")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    with torch.inference_mode():
        parts = [fn(network, xt[i : i + batch_size]) for i in range(0, xt.shape[0], batch_size)]
    return torch.cat(parts).float().numpy()


def predict_proba(model: nn.Module, x: Tensor | np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Class probabilities (N, C) as float32, in eval mode without gradients (see `inference_copy`: the model
    itself is untouched)."""
    return run_batches(inference_copy(model), x, lambda net, xb: torch.softmax(net(xb), dim=1), batch_size)


def embed(model: SmallCNN, x: Tensor | np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
    """Penultimate features (N, D) as float32: the globally pooled features the linear head classifies
    (`SmallCNN.embed`), in eval mode without gradients (see `inference_copy`: the model itself is untouched).

    For clustering a model's errors (weak-slice discovery): samples the model sees alike lie close together.
    """
    return run_batches(inference_copy(model), x, lambda net, xb: net.embed(xb), batch_size)


def probs_and_features(
    network: nn.Module, x: Tensor | np.ndarray, batch_size: int = EVAL_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N, C) and penultimate features (N, D) of `network` (as `inference_copy` makes it)
    from one forward pass per batch: the same numbers as `predict_proba` and `embed`, for the cost of one."""

    def both(net: nn.Module, xb: Tensor) -> Tensor:
        features = net.embed(xb)
        return torch.cat([torch.softmax(net.head(features), dim=1), features], dim=1)

    out = run_batches(network, x, both, batch_size)
    classes = network.head.out_features
    return np.ascontiguousarray(out[:, :classes]), np.ascontiguousarray(out[:, classes:])


def _plain(obj: Any, what: str) -> Any:
    """A JSON round trip: model files hold only plain values, so they load with `weights_only=True`."""
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} must hold only plain JSON values (str, int, float, bool, None, list, dict): {exc}"
        ) from exc


def save_model(result: TrainResult, path: str | os.PathLike[str], meta: dict[str, Any]) -> str:
    """Write the model atomically (state_dict, labels, modality, cfg, meta) and return the file's sha256.

    Serialised in memory first: `torch.save` to a named file embeds that name, and the atomic write goes
    through a temporary name, so this is what keeps the bytes identical across runs.
    """
    payload = {
        "format": MODEL_FORMAT,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()},
        "labels": list(result.labels),
        "modality": result.modality,
        "cfg": _plain(result.cfg, "cfg"),
        "meta": _plain(meta, "meta"),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def load_model(path: str | os.PathLike[str]) -> tuple[SmallCNN, list[str], dict[str, Any]]:
    """(model in eval mode, labels, meta) from a file written by `save_model`; the global RNG is untouched."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable model file: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path}: not a model file written by curation.train.save_model ({MODEL_FORMAT})")
    labels = list(payload["labels"])
    with torch.random.fork_rng(devices=[]):
        model = build_model(payload["modality"], len(labels), payload["cfg"])
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not fit the {payload['modality']} network: {exc}") from exc
    model.eval()
    return model, labels, payload["meta"]


def sanity_overfit(
    x: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    labels: list[str],
    modality: str,
    cfg: dict[str, Any],
    seed: int,
    n: int = 16,
    steps: int = 150,
) -> float:
    """Check that the network can memorise `n` of the samples (drawn with the seed) in `steps` full-batch
    steps, before spending a full training run on it: meant for the train stage's `train.sanity: true`, called
    with the same train inputs, targets, labels, modality, cfg and seed as `train_model`.

    Returns the accuracy on them (1.0) and raises `TrainingError` if it stays below 100%: a network that
    cannot overfit a handful of samples points at broken inputs, labels or learning rate, not at the data.
    The network is built and fitted like `train_model`'s (input standardisation from all of `x`), but with no
    weight decay and no class weights; accuracy is measured in eval mode every 10 steps and at the end.
    Seeded and side-effect free like `train_model`; takes seconds (16 samples, at most 150 steps).
    """
    if n < 1 or steps < 1:
        raise ValueError(f"sanity check needs n >= 1 samples and steps >= 1, got n={n}, steps={steps}")
    xa = _as_inputs(x, "sanity inputs")
    ya = _as_targets(y, xa.shape[0], len(labels), "sanity targets")
    pick = np.sort(generator(seed, "sanity", "pick").choice(xa.shape[0], size=min(n, xa.shape[0]), replace=False))
    xs, ys = xa[torch.from_numpy(pick)], ya[torch.from_numpy(pick)]
    accuracy = 0.0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "sanity", "init"))
        model = build_model(modality, len(labels), cfg)
        model.fit_input_stats(xa)
        opt = torch.optim.AdamW(model.parameters(), lr=float(cfg["lr"]), weight_decay=0.0)
        for step in range(1, steps + 1):
            model.train()
            loss = F.cross_entropy(model(xs), ys)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 10 == 0 or step == steps:
                _, accuracy = _evaluate(model, xs, ys, None)
                if accuracy == 1.0:
                    return accuracy
    raise TrainingError(
        f"sanity check failed: the {modality} network reached only {accuracy:.0%} accuracy "
        f"on {xs.shape[0]} training samples after {steps} steps (expected 100%); check that "
        f"inputs and labels match, the input scale, and the learning rate ({cfg['lr']})"
    )
