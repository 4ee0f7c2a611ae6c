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

    _, cfg, lay = _context(args)
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
    manifest.write(samples.kept, lay.manifest)
    with atomic_path(lay.noise) as tmp:
        noise.kept.to_parquet(tmp, index=False)
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
    from curation.train import save_model, train_model

    params, cfg, lay = _context(args)
    df = manifest.read(_train_manifest(lay, args.version))
    labels = [str(x) for x in (cfg.get("labels") or sorted(df["label"].unique()))]
    tr, dev = df[df["split"] == "train"], df[df["split"] == "dev"]
    media_cfg = {cfg["modality"]: cfg["media"]}
    index = {label: k for k, label in enumerate(labels)}
    result = train_model(
        load_inputs(tr["path"].tolist(), cfg["modality"], media_cfg),
        np.array([index[x] for x in tr["label"]]),
        load_inputs(dev["path"].tolist(), cfg["modality"], media_cfg),
        np.array([index[x] for x in dev["label"]]),
        labels,
        cfg["modality"],
        cfg["train"] | {"media": cfg["media"]},
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
    from curation.features import load_inputs
    from curation.train import load_model, predict_proba

    model, labels, _ = load_model(model_path)

    def predict(paths: list[str]) -> np.ndarray:
        return predict_proba(model, load_inputs(paths, modality, {modality: media}))

    return predict, labels


def cmd_evaluate(args: argparse.Namespace) -> None:
    """Predict the dev and test evaluation sets and measure every slice with bootstrap intervals."""
    from curation.metrics import class_report, slice_table

    params, cfg, lay = _context(args)
    predict, labels = _predictor(lay.model(args.version), cfg["modality"], cfg["media"])
    out: dict[str, Any] = {}
    min_size = cfg.get("analyze", {}).get("min_size", 20)
    for part in ("dev", "test"):
        ev = manifest.read(lay.eval_set(part))
        probs = predict(ev["path"].tolist())
        pred = ev.assign(
            pred=[labels[k] for k in probs.argmax(axis=1)],
            confidence=probs.max(axis=1),
            p_label=probs[np.arange(len(ev)), [labels.index(x) for x in ev["label"]]],
        )
        pred["correct"] = pred["pred"] == pred["label"]
        with atomic_path(lay.predictions(args.version, part)) as tmp:
            pred.to_parquet(tmp, index=False)
        table = slice_table(pred, cfg["slices"], seed=params["seed"], min_size=min_size)
        out[part] = {
            "slices": {
                r["slice"]: {k: r[k] for k in ("n", "accuracy", "ci_low", "ci_high", "small")}
                for r in table.to_dict("records")
            },
            "classes": class_report(pred, labels),
        }
    write_json(lay.version_metrics(args.version), out)
    print(f"{args.dataset} {args.version}: test accuracy {out['test']['slices']['all']['accuracy']:.3f}")


def cmd_analyze(args: argparse.Namespace) -> None:
    """The error-analysis table on dev: slices ranked by gap to the baseline level x share of data."""
    from curation.analysis import error_table, to_markdown, top_targets

    params, cfg, lay = _context(args)
    a = cfg["analyze"]
    pred = pd.read_parquet(lay.predictions("v1", "dev"))
    table = error_table(pred, cfg["slices"], a["baseline"], seed=params["seed"], min_size=a["min_size"])
    targets = top_targets(table, a["top_k"], a["min_size"])
    by_slice = table.set_index("slice")
    target_rows = [{"slice": t, "priority": float(by_slice.loc[t, "priority"])} for t in targets]
    with atomic_dir(lay.analysis_dir) as tmp:
        table.to_csv(tmp / "table.csv", index=False)
        (tmp / "table.md").write_text(to_markdown(table), encoding="utf-8")
        (tmp / "targets.json").write_text(json.dumps(target_rows, indent=2) + "\n", encoding="utf-8")
    write_json(lay.metrics / "analysis.json", {"targets": target_rows, "top_priority": targets[:1]})
    print(to_markdown(table))
    print(f"{args.dataset}: augmentation targets {', '.join(targets) or '(none)'}")


def cmd_augment(args: argparse.Namespace) -> None:
    """Generate candidates for the top slices, the budget shared by priority."""
    from curation.candidates import generate_candidates

    params, cfg, lay = _context(args)
    a = cfg["augment"]
    targets = read_json(lay.analysis_dir / "targets.json")
    with atomic_dir(lay.candidates_dir) as tmp:
        cands, plan = generate_candidates(
            manifest.read(lay.split),
            pd.read_parquet(lay.noise),
            targets,
            a.get("policies") or {},
            a["budget"],
            cfg["modality"],
            cfg["media"],
            params["seed"],
            tmp,
            path_root=lay.candidates_dir,
        )
        manifest.write(cands, tmp / "candidates.parquet")
        write_json(tmp / "plan.json", plan)
    print(f"{args.dataset}: {len(cands)} candidates; allocation {plan['allocation']}")
    if plan["targets_without_policy"]:
        print(f"{args.dataset}: no augmentation policy for {', '.join(plan['targets_without_policy'])}")


def cmd_filter(args: argparse.Namespace) -> None:
    """Score every candidate on the checklist; write verdicts, the review queue and a gallery."""
    from curation.checklist import score_candidates, verdicts
    from curation.conditions import load_sample
    from curation.gallery import gallery_html
    from curation.versions import review_queue

    _, cfg, lay = _context(args)
    cands = manifest.read(lay.candidates_dir / "candidates.parquet")
    split_df = manifest.read(lay.split)
    dev = manifest.read(lay.eval_set("dev"))
    real = pd.concat([split_df[split_df["split"] == "train"], dev], ignore_index=True)
    predict, labels = _predictor(lay.model("v1"), cfg["modality"], cfg["media"])
    source_paths = split_df.set_index("id")["path"].to_dict()

    def load(path: str) -> np.ndarray:
        return load_sample(path, cfg["modality"], cfg["media"])

    scores = score_candidates(cands, source_paths, labels, real, predict, cfg["modality"], cfg["media"], load)
    judged = verdicts(scores, cfg["checklist"])
    counts = judged.groupby(["target_slice", "verdict"]).size().unstack(fill_value=0)
    with atomic_dir(lay.checklist_dir) as tmp:
        judged.to_parquet(tmp / "verdicts.parquet", index=False)
        write_csv(review_queue(judged, pd.read_parquet(lay.label_issues)), tmp / "review_queue.csv")
        (tmp / "gallery.html").write_text(gallery_html(judged, cfg["modality"], cfg["media"], load), encoding="utf-8")
    summary = {s: {v: int(n) for v, n in row.items()} for s, row in counts.iterrows()}
    write_json(
        lay.metrics / "checklist.json",
        {"by_slice": summary, "total": judged["verdict"].value_counts().to_dict()},
    )
    print(f"{args.dataset}: verdicts {judged['verdict'].value_counts().to_dict()}")


def cmd_build(args: argparse.Namespace) -> None:
    """Build the next dataset version from the split, the accepted candidates and the review decisions."""
    from curation.versions import build_version, read_decisions

    _, cfg, lay = _context(args)
    cands = manifest.read(lay.candidates_dir / "candidates.parquet")
    judged = pd.read_parquet(lay.checklist_dir / "verdicts.parquet")
    version, changes = build_version(
        manifest.read(lay.split),
        cands,
        judged,
        read_decisions(str(lay.decisions)),
        cfg["labels"],
        pd.read_parquet(lay.label_issues),
    )
    manifest.write(version, lay.train_set("v2"))
    write_json(lay.metrics / "card_v2.json", changes | {"parent": str(lay.split)})
    print(f"{args.dataset} v2: {changes['samples']} samples, {changes['added']} added")


def cmd_compare_versions(args: argparse.Namespace) -> None:
    """Per-slice test accuracy of several versions of one data set, with paired intervals of the change."""
    from curation.compare import CompareError, audit, compare_versions, plot_comparison, to_markdown

    params, cfg, lay = _context(args)
    preds = {v: pd.read_parquet(lay.predictions(v, "test")) for v in args.versions}
    targets = [t["slice"] for t in read_json(lay.analysis_dir / "targets.json")]
    table = compare_versions(preds, cfg["slices"], params["seed"], targets=targets)
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
    """Add the review queue's samples to the decisions file, undecided, for a labeler to fill in."""
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
    rows = pd.DataFrame({"id": new["id"], "decision": "", "label": proposed, "labeler": "", "note": ""})
    out = pd.concat([current, rows], ignore_index=True)[list(DECISION_COLUMNS)]
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False)
    print(f"{path}: {len(rows)} samples added for review ({len(out)} in all)")


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
    add("augment", cmd_augment)
    add("filter", cmd_filter)
    add("build", cmd_build)
    add("compare-versions", cmd_compare_versions).add_argument("versions", nargs="+")
    add("show", cmd_show, dataset=False)
    add("review-init", cmd_review_init)
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
