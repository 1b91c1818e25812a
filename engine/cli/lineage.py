"""CLI sub-commands: ``dif cross``, ``dif lineage``, ``dif attribute``, ``dif demo build|info``.

Registered by :mod:`engine.cli.main`; each command returns an exit code and raises
:class:`~engine.errors.DifError` subclasses for user errors (printed as one line).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from engine.cli.common import OFFSETS_HELP, add_table_format, open_store, print_json, progress_bar
from engine.errors import ConfigError


def _load_models(store, names: list[str], need_tests: bool) -> list:
    """The named models, or (no names) every stored model; without names, models lacking held-out
    test files are skipped with a note instead of failing the whole command."""
    if names:
        return [store.load(n) for n in names]
    fps = []
    for name, fp, problem in store.scan():
        if fp is None:
            print(f"skipped {name}: {problem}", file=sys.stderr)
        elif need_tests and not (fp.test_files.get("real") and fp.test_files.get("fake")):
            print(f"skipped {name}: no held-out test files recorded", file=sys.stderr)
        else:
            fps.append(fp)
    if not fps:
        raise ConfigError(f"no usable models in {store.root} (train some, or run 'dif demo build')")
    return fps


def _cross(store, fps):
    from engine.lineage.cross import cross_detect

    bar = progress_bar("residuals")
    return cross_detect(fps, store, progress=bar.update)


def cmd_cross(args) -> int:
    store = open_store(args)
    fps = _load_models(store, args.names, need_tests=True)
    result = _cross(store, fps)
    if args.json:
        print_json(result.to_dict())
    elif args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(["detector \\ test set", *result.names])
        for name, row in zip(result.names, result.accuracy):
            writer.writerow([name, *[f"{v:.4f}" for v in row]])
    else:
        frame = result.to_frame().round(3)
        print("balanced accuracy: rows = detector, columns = test set (diagonal = ordinary detection)")
        print(frame.to_string())
        print(f"{len(result.names)} models, {sum(result.n_test)} test-set images, {result.seconds:.2f}s")
        if np.isnan(result.accuracy).any():
            print("NaN: that test set's images are smaller than the detector's crop (no measurement)")
    return 0


def cmd_lineage(args) -> int:
    from engine.lineage.export import to_graphml, to_html, to_node_link, to_png
    from engine.lineage.infer import LineageParams, families, infer_lineage
    from engine.lineage.scoring import score_lineage, truth_from_metadata

    store = open_store(args)
    fps = _load_models(store, args.names, need_tests=True)
    params = LineageParams(
        family_threshold=args.family_threshold, edge_threshold=args.edge_threshold, affinity=args.affinity
    )
    cross = _cross(store, fps)
    metadata = {fp.name: fp.metadata for fp in fps}
    graph = infer_lineage(cross, metadata, params, cards={fp.name: fp.summary() for fp in fps})
    truth = truth_from_metadata(metadata)
    scores = (
        score_lineage(graph, truth) if truth and len(truth["models"]) >= 2 else None
    )  # scored on the models with truth
    written = {}
    if args.graphml:
        written["graphml"] = str(to_graphml(graph, args.graphml))
    if args.node_link:
        with open(args.node_link, "w") as fh:
            json.dump(to_node_link(graph), fh, indent=2)
        written["node_link"] = args.node_link
    if args.html:
        with open(args.html, "w", encoding="utf-8") as fh:
            fh.write(to_html(graph))
        written["html"] = args.html
    if args.png:
        written["png"] = str(to_png(graph, args.png))
    fams = families(graph)
    edges = [{"source": u, "target": v, **d} for u, v, d in graph.edges(data=True)]
    if args.json:
        out: dict[str, Any] = {
            "params": {
                "family_threshold": params.family_threshold,
                "edge_threshold": params.edge_threshold,
                "affinity": params.affinity,
            },
            "families": fams,
            "edges": edges,
            "cross": cross.to_dict(),
            "written": written,
        }
        if scores is not None:
            out.update(scores)
        print_json(out)
        return 0
    print(
        f"{len(fps)} models, {len(fams)} families (family threshold {params.family_threshold}, edge threshold "
        f"{params.edge_threshold}, affinity {params.affinity})"
    )
    for i, fam in enumerate(fams):
        print(f"  family {i}: {', '.join(fam)}")
    print("edges (C[u][v] = u's detector on v's images):")
    for e in edges:
        arrow = "->" if e["directed"] else "--"
        print(
            f"  {e['source']} {arrow} {e['target']}  C {e['c_ij']:.3f} / {e['c_ji']:.3f}  affinity "
            f"{e['affinity']:.3f}  confidence {e['confidence']:.2f}  ({e['orientation']})"
        )
    if not edges:
        print("  (none)")
    if any(not e["directed"] for e in edges):
        print("  '--' edges have no known direction (only metadata base_model / release_date orients an edge)")
    if scores is not None:
        recall = scores["parent_child_recall"]
        print(
            f"ground truth ({scores['n_models']} models): ARI {scores['ari']:.3f}, parent-child recall "
            f"{recall if recall is None else f'{recall:.3f}'} "
            f"({len(scores['parent_child_found'])}/{len(scores['parent_child_pairs'])} pairs)"
        )
    for kind, path in written.items():
        print(f"wrote {kind}: {path}")
    return 0


def cmd_attribute(args) -> int:
    from engine.cli.provenance import beside_attribution, render
    from engine.data.images import expand_sources, load_images
    from engine.lineage.attribution import attribute

    store = open_store(args)
    fps = [store.load(n) for n in args.models] if args.models else store.list()
    if not fps:
        raise ConfigError(f"no models in {store.root} (train some, or run 'dif demo build')")
    images, bad = load_images(expand_sources(args.images), crop=None)
    results = attribute(images, fps, store, offsets=args.offsets) if images else []
    errors = [{"file": e.source, "error": e.problem} for e in bad]
    prov = beside_attribution(
        [r.source for r in results], [r.verdict for r in results], {fp.name: fp.metadata for fp in fps}
    )
    if args.report:
        write_case_report(args.report, results, prov, fps)
    if args.json:
        rows = [
            {**r.to_dict(), "provenance": p["provenance"].to_dict(), "disagreements": p["disagreements"]}
            for r, p in zip(results, prov)
        ]
        print_json({"models": [fp.name for fp in fps], "results": rows, "errors": errors})
    else:
        for r, p in zip(results, prov):
            print(f"{r.source}: {r.verdict}")
            for row in r.ranking[: args.top]:
                print(
                    f"    {'claims' if row['claims'] else '      '} {row['model']:32s} score {row['score']:+7.3f}  "
                    f"rho {row['rho']:+.5f}"
                )
            for w in r.warnings:
                print(f"    warning: {w}")
            print("  provenance signals:")
            print("\n".join(render(p["provenance"])))
            for line in p["disagreements"]:
                print(f"    DISAGREEMENT: {line}")
        for e in errors:
            print(f"error {e['file']}: {e['error']}", file=sys.stderr)
    return 0 if results or not errors else 1


def write_case_report(path: str, results: list, prov: list[dict], fps: list) -> None:
    """``--report FILE``: the batch as one self-contained HTML page (the dashboard's case report)."""
    from engine.lineage.case_report import case_report_html, summarise

    verdicts = [summarise(r, p["disagreements"]) for r, p in zip(results, prov)]
    page = case_report_html(verdicts, results, fps, [[s.to_dict() for s in p["provenance"].signals] for p in prov])
    try:
        Path(path).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the case report ({exc.strerror or type(exc).__name__})") from None
    print(f"wrote case report: {path}", file=sys.stderr)


def cmd_demo_build(args) -> int:
    from engine.zoo.demo import ZooConfig, build_demo

    store = open_store(args)
    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            bars[stage] = progress_bar(f"{stage:12s}")
        bars[stage].update(done, total)

    start = time.time()
    manifest = build_demo(store, progress, ZooConfig())
    if args.json:
        print_json({k: v for k, v in manifest.items() if k != "files"})
        return 0
    state = "found (cached)" if manifest["cached"] else f"built in {time.time() - start:.1f}s"
    print(f"zoo {state}: {len(manifest['models'])} models in {store.root}")
    for name in manifest["models"]:
        t = manifest["truth"]["models"][name]
        print(f"  {name:16s} family {t['family']}  parent {t['parent'] or '-':16s} {t['description']}")
    print(f"ground truth: {manifest['root']}/truth.json; next: dif lineage {' '.join(manifest['models'])}")
    return 0


def cmd_demo_info(args) -> int:
    from engine.zoo.demo import demo_model_names, demo_truth

    store = open_store(args)
    truth = demo_truth(store)
    present = demo_model_names(store)
    if args.json:
        print_json({"truth": truth, "present": present})
        return 0
    print(f"zoo {truth['version']} in {store.root}: {len(present)}/{len(truth['models'])} models present")
    for fam, members in truth["families"].items():
        print(f"  family {fam}: {', '.join(members)}")
    print("  parent -> child: " + ", ".join(f"{p} -> {c}" for p, c in truth["parent_child"]))
    return 0


def register(sub, add_common: Callable) -> None:
    """Add the lineage sub-commands to ``dif``'s argparse sub-parsers."""
    from engine.lineage.infer import AFFINITIES, DEFAULT_EDGE_THRESHOLD, DEFAULT_FAMILY_THRESHOLD

    p = sub.add_parser("cross", help="cross-detection matrix: each model's detector on every model's held-out images")
    p.add_argument("names", nargs="+", help="stored model names")
    add_table_format(p)
    add_common(p)
    p.set_defaults(func=cmd_cross)

    p = sub.add_parser("lineage", help="infer model families and relations from cross-detection")
    p.add_argument("names", nargs="*", help="stored model names (default: every stored model with test files)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--graphml", metavar="FILE")
    p.add_argument("--node-link", metavar="FILE", help="node-link JSON (d3 / networkx)")
    p.add_argument("--html", metavar="FILE", help="standalone interactive page")
    p.add_argument("--png", metavar="FILE")
    p.add_argument(
        "--family-threshold",
        type=float,
        default=DEFAULT_FAMILY_THRESHOLD,
        help=f"mean mutual accuracy to join a family (default {DEFAULT_FAMILY_THRESHOLD})",
    )
    p.add_argument(
        "--edge-threshold",
        type=float,
        default=DEFAULT_EDGE_THRESHOLD,
        help=f"weakest mutual accuracy of a tree edge (default {DEFAULT_EDGE_THRESHOLD})",
    )
    p.add_argument("--affinity", choices=AFFINITIES, default="min")
    add_common(p)
    p.set_defaults(func=cmd_lineage)

    p = sub.add_parser("attribute", help="which known generator (if any) made each image?")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--models", nargs="+", help="only these models (default: all stored)")
    p.add_argument("--top", type=int, default=5, help="ranking rows to print per image")
    p.add_argument("--offsets", action=argparse.BooleanOptionalAction, default=True, help=OFFSETS_HELP)
    p.add_argument(
        "--report",
        metavar="FILE",
        help="also write a self-contained HTML case report (hashes, verdicts, models, provenance)",
    )
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(func=cmd_attribute)

    demo = sub.add_parser("demo", help="the built-in model-family zoo")
    demo_sub = demo.add_subparsers(dest="demo_command", required=True)
    p = demo_sub.add_parser("build", help="build the zoo, its images and fingerprints (cached)")
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(func=cmd_demo_build)
    p = demo_sub.add_parser("info", help="show the zoo's ground truth")
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(func=cmd_demo_info)
