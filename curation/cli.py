"""`curate`: one subcommand per pipeline stage. Each reads params.yaml and the paths of curation/layout.py,
calls library functions, and writes its outputs atomically. `dvc.yaml` calls these commands."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation import manifest
from curation.config import ConfigError, dataset_config, load_params
from curation.io import atomic_dir, atomic_path, read_json, write_csv, write_json, write_text
from curation.layout import Layout

DEMOS = ("digits", "spoken_digits")
SOURCES_DIR = Path("data/sources")


def _context(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], Layout]:
    params = load_params(args.params)
    return params, dataset_config(params, args.dataset), Layout(args.dataset)


def cmd_demo(args: argparse.Namespace) -> None:
    """Make an embedded demo data set from what the dependencies ship (no network, no outside files)."""
    params = load_params(args.params)
    if args.name not in DEMOS:
        raise ConfigError(f"unknown demo {args.name!r}; known: {', '.join(DEMOS)}")
    with atomic_dir(SOURCES_DIR / args.name) as tmp:
        if args.name == "digits":
            from curation.sources.digits import write_digits

            write_digits(tmp)
        else:
            from curation.sources.speech import write_noise, write_spoken_digits

            write_spoken_digits(tmp, params["seed"])
            write_noise(tmp / "noise", params["seed"])


def cmd_ingest(args: argparse.Namespace) -> None:
    """List the raw data through its adapter (CSV manifest or folder per class), unjudged, for validate."""
    from curation.ingest import list_noise, list_source

    _, cfg, lay = _context(args)
    listing, report = list_source(cfg["source"], cfg["modality"])
    noise = list_noise(cfg["source"]["root"], cfg.get("noise"))
    report["noise_listed"] = len(noise)
    for frame, path in ((listing, lay.listing), (noise, lay.noise_listing)):
        with atomic_path(path) as tmp:
            frame.to_parquet(tmp, index=False)
    write_json(lay.metrics / "ingest.json", report)
    print(f"{args.dataset}: {report['seen']} samples listed ({report['excluded_by_query']} excluded by the query, "
          f"{len(report['ignored'])} files ignored), {len(noise)} noise clips")  # fmt: skip


def cmd_validate(args: argparse.Namespace) -> None:
    """Read every listed file once, run every check, quarantine or fail; write the manifest, the readiness
    report, the findings, the profile and its drift against the pinned reference profile."""
    from curation.checks.drift import balance_findings, drift, profile
    from curation.validate import readiness_markdown, validate, validate_noise, with_measurements

    params, cfg, lay = _context(args)
    v = cfg.get("validate") or {}
    on_error = cfg.get("on_error", "fail")
    split_column = v.get("split_column") or cfg["split"].get("fixed_column")
    root = cfg["source"]["root"]
    listed = read_json(lay.metrics / "ingest.json")
    samples = validate(
        pd.read_parquet(lay.listing), root, cfg["modality"], cfg["media"], labels=cfg.get("labels"),
        settings=v.get("checks"), on_error=on_error, split_column=split_column, workers=int(v.get("workers", 1)),
    )  # fmt: skip
    noise = validate_noise(
        pd.read_parquet(lay.noise_listing), root, cfg["media"], settings=v.get("checks"), on_error=on_error,
        workers=int(v.get("workers", 1)),
    )  # fmt: skip
    slice_columns = [c for c in cfg["slices"] if c in samples.kept.columns]
    current = profile(with_measurements(samples, cfg["modality"]), cfg["modality"], slice_columns, cfg.get("labels"))
    reference = read_json(lay.reference_profile) if lay.reference_profile.exists() else {}
    drifted = drift(current, reference, v.get("drift"))
    balance = balance_findings(current, **(v.get("balance") or {}))
    report = samples.report | {
        "listed": listed["listed"], "excluded_by_query": listed["excluded_by_query"], "ignored": listed["ignored"],
        "noise": noise.report, "drift": drifted, "balance": balance, "reference_pinned": bool(reference),
    }  # fmt: skip
    pools = _noise_pools(noise.kept, cfg.get("noise") or {}, params["seed"])
    report["noise"]["pools"] = {str(k): int(v) for k, v in pools["pool"].value_counts().sort_index().items()}
    manifest.write(samples.kept, lay.manifest)
    with atomic_path(lay.noise) as tmp:
        pools.to_parquet(tmp, index=False)
    with atomic_dir(lay.readiness_dir) as tmp:
        (tmp / "report.md").write_text(
            readiness_markdown(args.dataset, report, samples.findings, noise.findings, current), encoding="utf-8"
        )
        findings = pd.concat([samples.findings.assign(kind="sample"), noise.findings.assign(kind="noise")])
        write_csv(findings, tmp / "findings.csv")
        quarantined = findings[findings["severity"] == "error"]
        write_csv(quarantined, tmp / "quarantine.csv")
        samples.table.drop(columns=["under", "listing_error"]).to_parquet(tmp / "probe.parquet", index=False)
    write_json(lay.profile, current)
    write_json(lay.metrics / "readiness.json", report)
    print(
        f"{args.dataset}: {report['seen']} files seen = {report['kept']} kept + {report['quarantined']} quarantined; "
        f"noise {noise.report['seen']} = {noise.report['kept']} + {noise.report['quarantined']}; "
        f"{len(findings)} findings, {len(drifted)} drift, {len(balance)} balance (see {lay.readiness_dir}/report.md)"
    )


def _noise_pools(noise: pd.DataFrame, noise_cfg: dict[str, Any], seed: int) -> pd.DataFrame:
    """The validated noise table, with `dev_share` of the augment pool held out for the dev conditions when the
    params ask (`conditions.hold_out_dev_noise`, within `dev_within` (default: group), clusters `dev_cluster`):
    dev then measures the model on noise no candidate contains."""
    from curation.conditions import hold_out_dev_noise

    share = noise_cfg.get("dev_share")
    if not share:
        return noise
    within, cluster = noise_cfg.get("dev_within") or "group", noise_cfg.get("dev_cluster")
    return hold_out_dev_noise(noise, float(share), seed, within=within, cluster=cluster)


def cmd_pin_profile(args: argparse.Namespace) -> None:
    """Pin the current profile as the reference the next version's drift check compares with (commit it)."""
    _, _, lay = _context(args)
    write_json(lay.reference_profile, read_json(lay.profile))
    print(f"{lay.reference_profile}: pinned from {lay.profile}; commit it with git")


def cmd_split(args: argparse.Namespace) -> None:
    """Assign train / dev / test, stratified by label, grouped and seeded as params say."""
    from curation.split import assign_splits

    params, cfg, lay = _context(args)
    s = cfg["split"]
    kept = manifest.read(lay.manifest)
    df = assign_splits(
        kept,
        params["seed"],
        s["dev_fraction"],
        s["test_fraction"],
        fixed_column=s.get("fixed_column"),
        group_column=s.get("group_column"),
        dup_column="dup_group" if "dup_group" in kept.columns else None,
        fixed_map=s.get("fixed_map"),
    )
    manifest.write(df, lay.split)
    print(f"{args.dataset}: " + ", ".join(f"{k} {v}" for k, v in df["split"].value_counts().sort_index().items()))


def cmd_conditions(args: argparse.Namespace) -> None:
    """Build the dev and test evaluation sets, clean and under each stress-test condition."""
    from curation.conditions import build_eval_set

    params, cfg, lay = _context(args)
    split_df = manifest.read(lay.split)
    noise = pd.read_parquet(lay.noise)
    with atomic_dir(lay.eval_dir) as tmp:
        for part in ("dev", "test"):
            df = build_eval_set(
                split_df,
                part,
                cfg.get("conditions") or {},
                cfg["modality"],
                cfg["media"],
                noise,
                params["seed"],
                tmp,
                path_root=lay.eval_dir,
            )
            manifest.write(df, tmp / f"{part}.parquet")
            print(f"{args.dataset} {part}: {len(df)} samples over {df['condition'].nunique()} conditions")


def _train_manifest(lay: Layout, version: str) -> Path:
    return lay.split if version == "v1" else lay.train_set(version)


def cmd_train(args: argparse.Namespace) -> None:
    """Train the model of one dataset version (v1: the split as ingested; later ones: built versions)."""
    from curation.features import load_inputs
    from curation.train import sanity_overfit, save_model, train_model

    params, cfg, lay = _context(args)
    df = manifest.read(_train_manifest(lay, args.version))
    labels = [str(x) for x in (cfg.get("labels") or sorted(df["label"].unique()))]
    tr, dev = df[df["split"] == "train"], df[df["split"] == "dev"]
    media_cfg = {cfg["modality"]: cfg["media"]}
    index = {label: k for k, label in enumerate(labels)}
    x_train, y_train = load_inputs(tr["path"].tolist(), cfg["modality"], media_cfg), [index[x] for x in tr["label"]]
    train_cfg = cfg["train"] | {"media": cfg["media"]}
    if train_cfg.get("sanity", False):
        sanity_overfit(x_train, np.array(y_train), labels, cfg["modality"], train_cfg, params["seed"])
        print(f"{args.dataset} {args.version}: sanity check passed (the network memorises a handful of samples)")
    result = train_model(
        x_train,
        np.array(y_train),
        load_inputs(dev["path"].tolist(), cfg["modality"], media_cfg),
        np.array([index[x] for x in dev["label"]]),
        labels,
        cfg["modality"],
        train_cfg,
        params["seed"],
    )
    digest = save_model(result, lay.model(args.version), {"dataset": args.dataset, "version": args.version})
    best = result.history[result.best_epoch]
    summary = {
        "model_sha256": digest,
        "train_samples": len(tr),
        "dev_samples": len(dev),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "dev_accuracy": best["dev_accuracy"],
        "dev_loss": best["dev_loss"],
    }
    write_json(lay.metrics / f"train_{args.version}.json", summary)
    print(f"{args.dataset} {args.version}: dev accuracy {best['dev_accuracy']:.3f} (epoch {result.best_epoch})")


def cmd_label_issues(args: argparse.Namespace) -> None:
    """Flag likely label errors in train + dev by confident learning on K-fold out-of-sample probabilities
    (cleanlab); the flagged samples join the review queue."""
    from curation.label_issues import find_label_issues, out_of_sample_probs

    params, cfg, lay = _context(args)
    li = cfg.get("label_issues") or {}
    split_df = manifest.read(lay.split)
    pool = split_df[split_df["split"].isin(["train", "dev"])].sort_values("id").reset_index(drop=True)
    labels = [str(x) for x in (cfg.get("labels") or sorted(pool["label"].unique()))]
    probs = out_of_sample_probs(
        pool, labels, cfg["modality"], cfg["media"], cfg["train"], params["seed"],
        folds=int(li.get("folds", 4)), epochs=li.get("epochs"),
    )  # fmt: skip
    table = find_label_issues(
        pool, probs, labels, li.get("filter_by", "prune_by_noise_rate"), li.get("rank_by", "self_confidence")
    )
    flagged = table[table["is_issue"]]
    with atomic_path(lay.label_issues) as tmp:
        table.to_parquet(tmp, index=False)
    accuracy = float((table["suggested"] == table["label"]).mean())
    write_json(
        lay.metrics / "label_issues.json",
        {"samples": len(table), "flagged": len(flagged), "out_of_sample_accuracy": accuracy,
         "flagged_by_label": flagged["label"].value_counts().sort_index().to_dict()},
    )  # fmt: skip
    print(f"{args.dataset}: {len(flagged)} of {len(table)} samples flagged as likely label errors "
          f"(out-of-sample accuracy {accuracy:.3f})")  # fmt: skip


def _predictor(model_path: Path, modality: str, media: dict[str, Any]) -> tuple[Callable, list[str]]:
    """predict(paths) -> (class probabilities (N, C), penultimate features (N, D)) of a saved model, from one
    forward pass; the model is copied for inference once."""
    from curation.features import load_inputs
    from curation.train import inference_copy, load_model, probs_and_features

    model, labels, _ = load_model(model_path)
    network = inference_copy(model)

    def predict(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
        return probs_and_features(network, load_inputs(paths, modality, {modality: media}))

    return predict, labels


def _loader(cfg: dict[str, Any]) -> Callable[[str], np.ndarray]:
    """A file decoder for the data set's modality and media settings."""
    from curation.conditions import load_sample

    return lambda path: load_sample(path, cfg["modality"], cfg["media"])


def _tagged(pred: pd.DataFrame, cfg: dict[str, Any], lay: Layout) -> pd.DataFrame:
    """The predictions with their error-analysis tags: validate findings, labelers' #hashtags, boolean
    metadata columns and user tag functions, as params' `tags` says (curation/tags.py)."""
    from curation.tags import add_tags

    t = cfg.get("tags") or {}
    findings = pd.read_csv(lay.readiness_dir / "findings.csv", dtype=str, keep_default_na=False)
    decisions = pd.read_csv(lay.decisions, dtype=str, keep_default_na=False) if lay.decisions.exists() else None
    return add_tags(
        pred, findings=findings, decisions=decisions, metadata=t.get("metadata") or (),
        functions=t.get("functions") or None, checks=t.get("checks"), severities=t.get("severities"),
        load=_loader(cfg), root=Path.cwd(),
    )  # fmt: skip


def read_table(path: Path) -> pd.DataFrame:
    """A slice, class or confusion table written by evaluate, names and labels kept as text ("01" stays "01")."""
    text = {"slice": str, "column": str, "value": str, "class": str, "actual": str, "predicted": str}
    return pd.read_csv(path, dtype=text, keep_default_na=False, na_values=[""])


def slice_specs(cfg: dict[str, Any], pred: pd.DataFrame) -> list[str]:
    """The slices to measure: params' `slices`, and every tag when the predictions carry any."""
    from curation.slices import TAG, tag_names

    return list(cfg["slices"]) + ([TAG] if tag_names(pred) and TAG not in cfg["slices"] else [])


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Predict the dev and test evaluation sets, tag every sample, and measure every slice (accuracy,
    macro-F1, per-class scores, confusion, the focus class's FP/FN rates) with cluster-bootstrap intervals."""
    from curation.metrics import evaluate_slices, summary

    params, cfg, lay = _context(args)
    predict, labels = _predictor(lay.model(args.version), cfg["modality"], cfg["media"])
    a = cfg.get("analyze") or {}
    out: dict[str, Any] = {}
    with atomic_dir(lay.slice_tables(args.version)) as tables:
        for part in ("dev", "test"):
            ev = manifest.read(lay.eval_set(part))
            probs, features = predict(ev["path"].tolist())
            pred = ev.assign(
                pred=[labels[k] for k in probs.argmax(axis=1)],
                confidence=probs.max(axis=1),
                p_label=probs[np.arange(len(ev)), [labels.index(x) for x in ev["label"]]],
            )
            pred["correct"] = pred["pred"] == pred["label"]
            pred = _tagged(pred, cfg, lay)
            report = evaluate_slices(
                pred, slice_specs(cfg, pred), labels, params["seed"], min_size=int(a.get("min_size", 20)),
                focus=a.get("focus_class"),
            )  # fmt: skip
            with atomic_path(lay.predictions(args.version, part)) as tmp:
                pred.to_parquet(tmp, index=False)
            with atomic_path(lay.embeddings(args.version, part)) as tmp, open(tmp, "wb") as fh:
                np.save(fh, features.astype(np.float32))
            for name in ("slices", "classes", "confusion"):  # machine-read: plain CSV, labels kept verbatim
                getattr(report, name).to_csv(tables / f"{part}_{name}.csv", index=False)
            out[part] = summary(report)
    # the loop ends on the test set: its predictions and slices feed DVC's plot templates
    write_csv(pred[["label", "pred"]].rename(columns={"label": "actual", "pred": "predicted"}),
              lay.plot(args.version, "confusion"))  # fmt: skip
    write_csv(report.slices[["slice", "accuracy"]], lay.plot(args.version, "slices"))
    write_json(lay.version_metrics(args.version), out)
    print(f"{args.dataset} {args.version}: test accuracy {out['test']['slices']['all']['accuracy']:.3f}, "
          f"macro-F1 {out['test']['slices']['all']['macro_f1']:.3f}")  # fmt: skip


def cmd_analyze(args: argparse.Namespace) -> None:
    """Error analysis of the baseline on dev (which picks the augmentation targets) and test (the report):
    slices ranked by gap to the baseline level x share of data, weak slices discovered automatically, and a
    self-contained HTML report."""
    from curation.analysis import error_table, to_markdown, top_targets
    from curation.discovery import default_columns, discover
    from curation.discovery import to_markdown as discovered_markdown
    from curation.metrics import SliceReport
    from curation.report import ReportPart, analysis_report

    params, cfg, lay = _context(args)
    a = cfg["analyze"]
    d = a.get("discover") or {}
    policies = set((cfg.get("augment") or {}).get("policies") or {}) or None
    parts: dict[str, Any] = {}
    text = [f"# {args.dataset}: error analysis of v1\n"]
    with atomic_dir(lay.analysis_dir) as tmp:
        for part in ("dev", "test"):
            pred = pd.read_parquet(lay.predictions("v1", part))
            tables = {k: read_table(lay.slice_tables("v1") / f"{part}_{k}.csv")
                      for k in ("slices", "classes", "confusion")}  # fmt: skip
            labels = list(dict.fromkeys(tables["classes"]["class"]))  # the model's label order
            older = read_table(Path(a["baseline_model"]) / f"{part}_slices.csv") if a.get("baseline_model") else None
            errors = error_table(tables["slices"], a["baseline"], len(pred), older)
            found = discover(
                pred, d.get("columns") or default_columns(pred), seed=params["seed"], min_size=a["min_size"],
                alpha=float(d.get("alpha", 0.05)), embeddings=np.load(lay.embeddings("v1", part)),
                n_clusters=int(d.get("embedding_clusters", 8)), top_k=int(d.get("top_k", 20)),
            )  # fmt: skip
            targets = top_targets(errors, a["top_k"], a["min_size"], among=policies) if part == "dev" else []
            write_csv(errors, tmp / f"errors_{part}.csv")
            write_csv(found, tmp / f"discovered_{part}.csv")
            text += [f"## {part}\n", to_markdown(errors), f"\n### weak slices found in {part}\n",
                     discovered_markdown(found)]  # fmt: skip
            parts[part] = ReportPart.of(SliceReport(**tables), errors, found, targets, a.get("focus_class"))
        target_rows = [
            {"slice": t, "priority": float(parts["dev"].errors.set_index("slice").loc[t, "priority"])}
            for t in parts["dev"].targets
        ]
        (tmp / "errors.md").write_text("\n".join(text), encoding="utf-8")
        (tmp / "report.html").write_text(
            analysis_report(f"{args.dataset}: error analysis of v1", parts, labels), encoding="utf-8"
        )
    write_json(lay.targets, target_rows)
    top = {part: (top_targets(p.errors, 1, a["min_size"]) or [None])[0] for part, p in parts.items()}
    write_json(
        lay.metrics / "analysis.json",
        {"targets": target_rows, "top_priority": top,
         "discovered": {part: len(p.discovered) for part, p in parts.items()}},
    )  # fmt: skip
    print("\n".join(text))
    targets_text = ", ".join(t["slice"] for t in target_rows) or "(none)"
    print(f"{args.dataset}: top priority on test {top['test']}; augmentation targets {targets_text}; "
          f"report {lay.analysis_dir / 'report.html'}")  # fmt: skip


def _real_samples(lay: Layout) -> pd.DataFrame:
    """The real samples the checklist compares candidates with: the training data and the dev set under every
    condition (each slice's own real examples)."""
    split_df = manifest.read(lay.split)
    return pd.concat([split_df[split_df["split"] == "train"], manifest.read(lay.eval_set("dev"))], ignore_index=True)


def cmd_reference(args: argparse.Namespace) -> None:
    """Measure the real data once per model for the checklist: statistics, features and probabilities."""
    from curation.checklist import build_reference, model_predictor
    from curation.train import load_model

    _, cfg, lay = _context(args)
    real = _real_samples(lay)
    model, _, _ = load_model(lay.model("v1"))
    predict = model_predictor(model, cfg["modality"], cfg["media"])
    sources = set(real.loc[real["split"] == "train", "path"])  # candidates are made from training samples only
    reference = build_reference(real["path"].tolist(), predict, _loader(cfg), cfg["modality"], cfg["media"],
                                sources=sources)  # fmt: skip
    reference.save(lay.checklist_reference("v1"))
    print(f"{args.dataset}: checklist reference of {len(reference.paths)} real files")


def cmd_augment(args: argparse.Namespace) -> None:
    """Generate candidates for the top slices, the budget shared by priority, and score them on the checklist
    while they are in memory."""
    from curation.candidates import generate_candidates
    from curation.checklist import Checklist, Reference, empty_scores, model_predictor
    from curation.train import load_model

    params, cfg, lay = _context(args)
    a = cfg["augment"]
    targets = read_json(lay.targets)
    split_df = manifest.read(lay.split)
    model, labels, _ = load_model(lay.model("v1"))
    checklist = Checklist(
        Reference.load(lay.checklist_reference("v1")),
        _real_samples(lay),
        split_df.set_index("id")["path"].to_dict(),
        labels,
        model_predictor(model, cfg["modality"], cfg["media"]),
        cfg["modality"],
        cfg["media"],
    )
    scored: list[pd.DataFrame] = []
    with atomic_dir(lay.candidates_dir) as tmp:
        cands, plan = generate_candidates(
            split_df,
            pd.read_parquet(lay.noise),
            targets,
            a.get("policies") or {},
            a["budget"],
            cfg["modality"],
            cfg["media"],
            params["seed"],
            tmp,
            path_root=lay.candidates_dir,
            oversample=int(a.get("oversample", 1)),
            workers=int(a.get("workers", 1)),
            min_share=float(a.get("min_share", 0.0)),
            on_batch=lambda rows, sources, outputs: scored.append(checklist.score(rows, sources, outputs)),
        )
        manifest.write(cands, tmp / "candidates.parquet")
        scores = pd.concat(scored, ignore_index=True) if scored else empty_scores()
        scores.to_parquet(tmp / "scores.parquet", index=False)
        write_json(tmp / "plan.json", plan)
    repeats = sum(plan["duplicates_dropped"].values())
    print(
        f"{args.dataset}: {len(cands) + repeats} candidates made, {len(cands)} kept and scored; allocation "
        f"{plan['allocation']}"
        + (f"; {repeats} dropped as repeats or copies of their source {plan['duplicates_dropped']}" if repeats else "")
    )
    if plan["targets_without_policy"]:
        print(f"{args.dataset}: no augmentation policy for {', '.join(plan['targets_without_policy'])}")


def cmd_filter(args: argparse.Namespace) -> None:
    """Judge every scored candidate against the checklist thresholds; write verdicts, the review queue and a
    gallery."""
    from curation.checklist import verdicts
    from curation.gallery import gallery_html
    from curation.versions import review_queue

    _, cfg, lay = _context(args)
    judged = verdicts(pd.read_parquet(lay.candidates_dir / "scores.parquet"), cfg["checklist"])
    counts = judged.groupby(["target_slice", "verdict"]).size().unstack(fill_value=0)
    with atomic_dir(lay.checklist_dir) as tmp:
        judged.to_parquet(tmp / "verdicts.parquet", index=False)
        write_csv(review_queue(judged, pd.read_parquet(lay.label_issues)), tmp / "review_queue.csv")
        (tmp / "gallery.html").write_text(
            gallery_html(judged, cfg["modality"], cfg["media"], _loader(cfg)), encoding="utf-8"
        )
    summary = {s: {v: int(n) for v, n in row.items()} for s, row in counts.iterrows()}
    write_json(
        lay.metrics / "checklist.json",
        {"by_slice": summary, "total": judged["verdict"].value_counts().to_dict()},
    )
    print(f"{args.dataset}: verdicts {judged['verdict'].value_counts().to_dict()}")


def cmd_build(args: argparse.Namespace) -> None:
    """Build the next dataset version from the split, the accepted candidates and the review decisions."""
    from curation.versions import Stratify, build_version, read_decisions

    params, cfg, lay = _context(args)
    build = cfg.get("build") or {}
    cands = manifest.read(lay.candidates_dir / "candidates.parquet")
    judged = pd.read_parquet(lay.checklist_dir / "verdicts.parquet")
    version, changes = build_version(
        manifest.read(lay.split),
        cands,
        judged,
        read_decisions(str(lay.decisions)),
        cfg["labels"],
        pd.read_parquet(lay.label_issues),
        prior_tolerance=build.get("prior_tolerance"),
        allocation=read_json(lay.candidates_dir / "plan.json")["allocation"],
        pick=build.get("pick", "hardest"),
        seed=params["seed"],
        stratify=Stratify.from_params(build.get("stratify")),
    )
    manifest.write(version, lay.train_set("v2"))
    write_json(lay.metrics / "card_v2.json", changes | {"parent": str(lay.split)})
    print(f"{args.dataset} v2: {changes['samples']} samples, {changes['added']} added")


def cmd_compare_versions(args: argparse.Namespace) -> None:
    """Per-slice test accuracy of several versions of one data set, with paired intervals of the change."""
    from curation.compare import (
        CompareError,
        audit,
        compare_versions,
        plot_comparison,
        to_markdown,
        version_labels,
    )

    params, cfg, lay = _context(args)
    preds = {v: pd.read_parquet(lay.predictions(v, "test")) for v in args.versions}
    targets = [t["slice"] for t in read_json(lay.targets)]
    first = preds[args.versions[0]]
    labels = version_labels(preds, cfg.get("labels"))
    table = compare_versions(preds, slice_specs(cfg, first), params["seed"], labels, targets=targets)
    text = f"# {args.dataset}: test accuracy per slice\n\n" + to_markdown(table, args.versions)
    write_text(lay.comparison, text)
    plot_comparison(table, args.versions, lay.comparison_figure, f"{args.dataset}: per-slice test accuracy")
    records = {r["slice"]: {k: v for k, v in r.items() if k != "slice"} for r in table.to_dict("records")}
    gate = cfg.get("audit") or {}
    failures = audit(table, args.versions, gate.get("protected") or [], float(gate.get("tolerance", 0.0)))
    write_json(lay.metrics / "compare.json", records)
    print(text)
    if failures:
        raise CompareError("audit gate failed:\n  " + "\n  ".join(failures))
    if gate.get("protected"):
        print(
            f"{args.dataset}: audit gate passed for {', '.join(gate['protected'])} "
            f"(tolerance {gate.get('tolerance', 0.0)})"
        )


def cmd_compare(args: argparse.Namespace) -> None:
    """Compare a data set's versions at any git revisions, tags or DVC experiments on the same test samples.

    REV[:VERSION], VERSION v1 (baseline) or v2 (curated, the default), read from the DVC cache: per-slice accuracy,
    the paired change against the first version with its interval and McNemar p, sorted by the largest
    significant change; Markdown, JSON and an HTML report in --out. The audit gate of params fails it (exit 2)
    when a protected slice regresses significantly beyond the tolerance."""
    from curation.compare import (
        CompareError,
        audit,
        compare_versions,
        rank_by_change,
        regressions,
        to_markdown,
        version_labels,
    )
    from curation.compare_report import comparison_html
    from curation.revisions import Revision, load_version, parse_ref

    params, cfg, lay = _context(args)
    refs = [parse_ref(text) for text in args.versions]
    names = [r.name for r in refs]
    if len(refs) < 2 or len(set(names)) < len(names):
        raise CompareError(f"compare needs at least two different versions, got {', '.join(names)}")
    gate = cfg.get("audit") or {}
    protected, tolerance = [str(s) for s in gate.get("protected") or []], float(gate.get("tolerance", 0.0))
    revisions: dict[str, Revision] = {}
    try:
        for ref in refs:
            if ref.rev not in revisions:
                revisions[ref.rev] = Revision(ref.rev)
        versions = [load_version(revisions[r.rev], args.dataset, r.version, args.params) for r in refs]
        preds = {v.ref.name: v.predictions for v in versions}
        last = revisions[refs[-1].rev]  # the targets that shaped the last version
        targets = [t["slice"] for t in last.read_json(lay.targets)] if last.exists(lay.targets) else []
        labels = version_labels(preds, cfg.get("labels"))
        specs = slice_specs(cfg, versions[0].predictions)
        table = rank_by_change(compare_versions(preds, specs, params["seed"], labels, targets=targets), names)
        failures = audit(table, names, protected, tolerance)
        regressed = regressions(table, names, protected, tolerance)
        page = comparison_html(
            args.dataset, table, versions, labels, cfg["modality"], cfg["media"], last.sample_bytes,
            protected=protected, regressed=regressed, failures=failures,
        )  # fmt: skip
    finally:
        for revision in revisions.values():
            revision.close()
    commits = "".join(f"- {v.ref.name}: commit {v.commit}\n" for v in versions)
    title = f"# {args.dataset}: test accuracy per slice, {' vs '.join(names)}\n\n{commits}\n"
    text = title + to_markdown(table, names, protected, regressed)
    out = Path(args.out or f"reports/compare-{args.dataset}")
    write_text(out / "compare.md", text)
    write_json(
        out / "compare.json",
        {
            "dataset": args.dataset, "metric": "accuracy", "order": "largest significant change first",
            "versions": [{"name": v.ref.name, "rev": v.ref.rev, "version": v.ref.version, "commit": v.commit,
                          "params": v.params} for v in versions],
            "audit": {"protected": protected, "tolerance": tolerance, "failures": failures},
            "slices": table.to_dict("records"),
        },
    )  # fmt: skip
    write_text(out / "report.html", page)
    print(text)
    print(f"{args.dataset}: {out / 'compare.md'}, {out / 'compare.json'}, {out / 'report.html'}")
    if failures:
        raise CompareError("audit gate failed:\n  " + "\n  ".join(failures))
    if protected:
        print(f"{args.dataset}: audit gate passed for {', '.join(protected)} (tolerance {tolerance})")


CARD_PARAMS = {  # the params blocks that shape each version
    "v1": ("validate", "split", "media", "train"),
    "v2": ("validate", "split", "media", "train", "label_issues", "analyze", "augment", "checklist", "build"),
}


def cmd_card(args: argparse.Namespace) -> None:
    """Write the version cards of v1 and v2 (JSON + Markdown): content hash, code revision, counts, changes
    against the parent, params, and the test metrics of the model trained on each."""
    from curation.cards import card_markdown, file_md5, git_revision, version_card

    params, cfg, lay = _context(args)
    revision = git_revision()
    ready = read_json(lay.metrics / "readiness.json")
    parents = {
        "v1": (lay.split, {"parent": "validated listing", "seen": ready["seen"], "quarantined": ready["quarantined"]}),
        "v2": (lay.train_set("v2"), read_json(lay.metrics / "card_v2.json")),
    }
    slice_columns = [c for c in cfg.get("slices") or [] if isinstance(c, str)]
    cards = {}
    for version, (path, changes) in parents.items():
        shaping = {"seed": params["seed"], **{k: cfg.get(k) for k in CARD_PARAMS[version]}}
        cards[version] = version_card(
            dataset=args.dataset, version=version, manifest_df=manifest.read(path), content_md5=file_md5(path),
            slice_columns=slice_columns, changes=changes, params=shaping,
            metrics=read_json(lay.version_metrics(version))["test"],
            training=read_json(lay.metrics / f"train_{version}.json"), revision=revision,
        )  # fmt: skip
        write_text(lay.card(version), card_markdown(cards[version]))
    write_json(lay.cards, cards)
    print(f"{args.dataset}: cards {', '.join(str(lay.card(v)) for v in cards)}; code {revision}")


def cmd_show(args: argparse.Namespace) -> None:
    """Print the comparison tables of every data set that has one."""
    params = load_params(args.params)
    for name in params["datasets"]:
        path = Layout(name).comparison
        if path.exists():
            print(path.read_text(encoding="utf-8"))
        else:
            print(f"# {name}: no comparison yet (run `dvc repro`)\n")


def cmd_review_init(args: argparse.Namespace) -> None:
    """Add the review queue's samples to the decisions file, undecided, for a labeler to fill in by hand."""
    from curation.versions import DECISION_COLUMNS

    _, _, lay = _context(args)
    queue = pd.read_csv(lay.checklist_dir / "review_queue.csv", dtype=str)
    path = lay.decisions
    current = (
        pd.read_csv(path, dtype=str, keep_default_na=False) if path.exists() else pd.DataFrame(columns=DECISION_COLUMNS)
    )
    new = queue[~queue["id"].isin(current["id"])]
    # A label issue's label cell starts at the model's suggestion, so that `relabel` needs only the verb.
    proposed = new["suggested"].where(new["kind"] == "label_issue", new["label"])
    rows = pd.DataFrame({"id": new["id"], "decision": "", "label": proposed, "labeler": "", "note": "",
                         "path": new["path"]})  # fmt: skip
    current = current.reindex(columns=list(DECISION_COLUMNS), fill_value="")
    out = pd.concat([current, rows], ignore_index=True)[list(DECISION_COLUMNS)]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    print(f"{path}: {len(rows)} samples added for review ({len(out)} in all)")


def cmd_review_serve(args: argparse.Namespace) -> None:
    """Serve the review queue as a web page for labelers (127.0.0.1 unless --host says otherwise)."""
    import secrets

    import uvicorn

    from curation.review.app import LOOPBACK_HOSTS, create_app
    from curation.review.queue import ReviewQueue
    from curation.review.store import ReviewStore

    params, cfg, lay = _context(args)
    queue = ReviewQueue.load(cfg, lay)
    token = secrets.token_urlsafe(16) if args.token == "auto" else args.token
    loopback = args.host in LOOPBACK_HOSTS
    if not loopback and token is None:
        print(f"warning: serving on {args.host} without an access token: anyone who reaches it can decide",
              file=sys.stderr)  # fmt: skip
    hosts = [*LOOPBACK_HOSTS, args.host] if loopback else ["*"]
    app = create_app(queue, ReviewStore(lay.review_store), dataset=args.dataset, media_cfg=cfg["media"],
                     seed=int(params["seed"]), blind=args.blind, token=token, allowed_hosts=hosts)  # fmt: skip
    url = f"http://{args.host}:{args.port}/" + (f"?token={token}" if token else "")
    print(f"{args.dataset}: {len(queue)} samples to review{' (blind)' if args.blind else ''} at {url}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


def cmd_review_export(args: argparse.Namespace) -> None:
    """Write the store's decisions to the decisions file the build reads, and every labeler's to the annotations."""
    from curation.review.export import annotations, consensus, merge_decisions
    from curation.review.queue import queue_frame, queued_files
    from curation.review.store import ReviewStore, current_decisions
    from curation.versions import DECISION_COLUMNS

    _, _, lay = _context(args)
    queue = queue_frame(pd.read_csv(lay.checklist_dir / "review_queue.csv", dtype=str, keep_default_na=False))
    history = ReviewStore(lay.review_store).history()  # read once for both views
    current = current_decisions(history, queued_files(queue))
    stale = len(set(current_decisions(history)["seq"]) - set(current["seq"]))  # latest ones on files not queued
    existing = (
        pd.read_csv(lay.decisions, dtype=str, keep_default_na=False)
        if lay.decisions.exists()
        else pd.DataFrame(columns=DECISION_COLUMNS)
    )
    ids = queue["id"].tolist()
    merged = merge_decisions(existing, consensus(current, queue), ids)
    every = annotations(current, ids)
    for frame, path in ((merged, lay.decisions), (every, lay.annotations)):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    counts = merged["decision"].value_counts().to_dict()
    print(f"{lay.decisions}: {len(merged)} decisions {counts}; {lay.annotations}: {len(every)} from "
          f"{every['labeler'].nunique()} labeler(s)"
          + (f"; {stale} decision(s) on samples or files no longer queued left out" if stale else ""))  # fmt: skip


def cmd_review_agreement(args: argparse.Namespace) -> None:
    """Agreement between labelers and blind labelers' accuracy per slice, from the annotations file."""
    from curation.review.agreement import agreement_table
    from curation.review.queue import queue_frame, queued_files
    from curation.review.store import on_queued_files

    params, _, lay = _context(args)
    queue = queue_frame(pd.read_csv(lay.checklist_dir / "review_queue.csv", dtype=str, keep_default_na=False))
    notes = pd.read_csv(lay.annotations, dtype=str, keep_default_na=False)
    current = notes.rename(columns={"id": "sample_id"}).assign(blind=notes["blind"] == "True")
    # the queue may be newer than the export: decisions on files it no longer holds do not count
    current = on_queued_files(current, queued_files(queue))
    table = agreement_table(current, queue, int(params["seed"]))
    records = {r.pop("slice"): r for r in json.loads(table.to_json(orient="records"))}
    write_json(lay.metrics / "review.json", records)
    print(table.to_string(index=False))


def cmd_review_ls_export(args: argparse.Namespace) -> None:
    """Write the review queue as Label Studio tasks (JSON) and its labeling config (XML)."""
    from curation.review.label_studio import labeling_config, tasks
    from curation.review.queue import ReviewQueue

    _, cfg, lay = _context(args)
    queue = ReviewQueue.load(cfg, lay)
    out = Path(args.out or lay.reviews / f"{args.dataset}.label-studio.json")
    write_json(out, tasks(queue, args.document_root))
    write_text(out.with_suffix(".xml"), labeling_config(queue.labels, queue.modality))
    print(f"{out}: {len(queue)} tasks; labeling config {out.with_suffix('.xml')}")


def cmd_review_ls_import(args: argparse.Namespace) -> None:
    """Store the annotations of a Label Studio JSON export as decisions (then `curate review export`)."""
    from curation.review.label_studio import read_annotations
    from curation.review.queue import ReviewQueue
    from curation.review.store import ReviewStore, applies

    _, cfg, lay = _context(args)
    queue = ReviewQueue.load(cfg, lay)
    imported = read_annotations(read_json(args.file), queue)
    store = ReviewStore(lay.review_store)
    for d in imported.decisions:
        store.decide(**d)
    stale = sum(not applies(d["sample_id"], d["path"], queue.paths) for d in imported.decisions)
    print(f"{args.file}: {len(imported.decisions)} decisions stored in {lay.review_store}"
          + (f"; {stale} made on files no longer queued (stale: they will not count)" if stale else ""))  # fmt: skip
    for line in imported.skipped:
        print(f"  skipped {line}")


def build_parser() -> argparse.ArgumentParser:
    """The `curate` argument parser."""
    parser = argparse.ArgumentParser(prog="curate", description=__doc__)
    parser.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
    sub = parser.add_subparsers(dest="command", required=True)

    def add(name: str, func: Callable, *, dataset: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=(func.__doc__ or "").split("\n")[0])
        if dataset:
            p.add_argument("dataset", help="a data set named in params.yaml")
        p.set_defaults(func=func)
        return p

    add("demo", cmd_demo, dataset=False).add_argument("name", choices=DEMOS)
    add("ingest", cmd_ingest)
    add("validate", cmd_validate)
    add("pin-profile", cmd_pin_profile)
    add("split", cmd_split)
    add("label-issues", cmd_label_issues)
    add("conditions", cmd_conditions)
    add("train", cmd_train).add_argument("version", help="v1 (baseline) or v2 (built version)")
    add("evaluate", cmd_evaluate).add_argument("version")
    add("analyze", cmd_analyze)
    add("reference", cmd_reference)
    add("augment", cmd_augment)
    add("filter", cmd_filter)
    add("build", cmd_build)
    add("compare-versions", cmd_compare_versions).add_argument("versions", nargs="+")
    compare = add("compare", cmd_compare)
    compare.add_argument(
        "versions",
        nargs="+",
        metavar="REV[:VERSION]",
        help="git revision, tag or DVC experiment (:v1 the baseline, :v2 the curated version, the default); "
        "the first is the reference",
    )
    compare.add_argument("--out", help="folder for compare.md, compare.json, report.html (reports/compare-DATASET)")
    add("card", cmd_card)
    add("show", cmd_show, dataset=False)
    review = sub.add_parser("review", help="labelers review the queue: a web page, exports, Label Studio")
    rsub = review.add_subparsers(dest="review_command", required=True)

    def add_review(name: str, func: Callable) -> argparse.ArgumentParser:
        p = rsub.add_parser(name, help=(func.__doc__ or "").split("\n")[0])
        p.add_argument("dataset", help="a data set named in params.yaml")
        p.set_defaults(func=func)
        return p

    add_review("init", cmd_review_init)
    serve = add_review("serve", cmd_review_serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8765)
    serve.add_argument("--token", help="access token the page needs; 'auto' makes one and prints the link")
    serve.add_argument("--blind", action="store_true", help="hide the proposed label (measures human-level)")
    add_review("export", cmd_review_export)
    add_review("agreement", cmd_review_agreement)
    ls_export = add_review("ls-export", cmd_review_ls_export)
    ls_export.add_argument("--out", help="tasks JSON path (default data/reviews/<dataset>.label-studio.json)")
    ls_export.add_argument("--document-root", default=".", help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT")
    add_review("ls-import", cmd_review_ls_import).add_argument("file", help="a Label Studio JSON export")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; known errors print one clear message and exit 2."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        print(f"curate {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
