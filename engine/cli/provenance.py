"""CLI sub-command ``dif provenance IMAGE... [--json]``: watermark and metadata signals per image.

Also the shared text rendering that ``dif attribute`` prints beside its ranking.
"""

from __future__ import annotations

import sys
from typing import Callable

from engine.cli.common import print_json
from engine.provenance.signals import Provenance, read_provenance


def render(prov: Provenance, indent: str = "    ") -> list[str]:
    """Human-readable lines: one per signal (strength, kind, value, evidence), then problems."""
    lines = []
    for s in prov.signals:
        lines.append(f"{indent}[{s.strength:8s}] {s.kind}: {s.value}")
        lines.append(f"{indent}           evidence of: {s.evidence}")
    if not prov.signals:
        lines.append(f"{indent}no provenance signals (absence says nothing: metadata is easily stripped)")
    wm = prov.watermark
    if wm is not None and wm.available:
        lines.append(
            f"{indent}SD watermark: text '{wm.text}', bit agreement {wm.bit_agreement:.2f}, after realignment "
            f"{wm.aligned_agreement:.2f}"
        )
    for problem in prov.problems:
        lines.append(f"{indent}problem: {problem}")
    return lines


def cmd_provenance(args) -> int:
    from engine.data.images import expand_sources

    results = [read_provenance(path) for path in expand_sources(args.images)]
    if args.json:
        print_json({"results": [r.to_dict() for r in results]})
    else:
        for r in results:
            names = r.generators()
            print(f"{r.source}: {', '.join(names) if names else 'no generator named'}")
            print("\n".join(render(r)))
    unreadable = [r for r in results if r.metadata is None]
    for r in unreadable:
        print(f"error {r.source}: {'; '.join(r.problems)}", file=sys.stderr)
    return 1 if unreadable and len(unreadable) == len(results) else 0


def register(sub, add_common: Callable) -> None:
    """Add ``provenance`` to ``dif``'s argparse sub-parsers."""
    p = sub.add_parser("provenance", help="invisible watermark, generation parameters, EXIF and C2PA signals of images")
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--json", action="store_true")
    add_common(p)
    p.set_defaults(func=cmd_provenance)


def beside_attribution(sources: list[str], verdicts: list[str], model_metadata: dict[str, dict]) -> list[dict]:
    """Provenance and its disagreements with the fingerprint verdict, one entry per attributed image."""
    from engine.provenance.signals import compare

    out = []
    for source, verdict in zip(sources, verdicts):
        prov = read_provenance(source)
        out.append({"provenance": prov, "disagreements": compare(prov, verdict, model_metadata.get(verdict))})
    return out
