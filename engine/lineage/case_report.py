"""One attribution batch as a verdict one can read at a glance, and as a self-contained HTML case report.

The headline puts the doubt next to the verdict, where a reader looks first: the top model's
calibrated confidence, "inconclusive" when its calibrated band says so, a near-tie when the
runner-up claims the image almost as strongly, and any provenance disagreement. The same summary
feeds the dashboard and ``dif attribute --report FILE``, so both say the same thing.

Near-tie margin (score units: 0 = the model's cut, +1 = its generated mean), measured on the demo
zoo's held-out generated images against all 8 zoo models (320 images): a margin under 0.2 marked
49% of the wrong verdicts (almost all to a relative of the true model) and 10% of the right ones.
"""

from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from typing import Sequence

from engine.lineage.attribution import UNKNOWN, Attribution, detector_accuracy
from engine.storage.fingerprint import Fingerprint

NEAR_TIE_MARGIN = 0.2


@dataclass
class Verdict:
    """What the headline says about one image, and the numbers behind it."""

    source: str
    sha256: str
    status: str  # attributed | inconclusive | unknown
    model: str | None  # the verdict's model (or the one it leans to when inconclusive)
    best_model: str | None  # top of the ranking, whatever it claims
    confidence: float | None  # calibrated P(correct decision) of the top model, if calibrated
    margin: float | None  # score gap to the runner-up that also claims the image
    runner_up: str | None
    near_tie: bool
    warnings: list[str] = field(default_factory=list)
    disagreements: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """The verdict in a few words (for tables and the CSV)."""
        if self.status == "attributed":
            return f"{self.model}" + (f" (near-tie with {self.runner_up})" if self.near_tie else "")
        if self.status == "inconclusive":
            return f"inconclusive (leans to {self.model})"
        return UNKNOWN

    def headline(self, strong: str = "") -> str:
        """One sentence: verdict, confidence, near-tie and provenance, in that order of importance.

        ``strong`` wraps the key words (``"**"`` for Markdown)."""
        b = lambda text: f"{strong}{text}{strong}"  # noqa: E731
        conf = f", confidence {self.confidence:.2f}" if self.confidence is not None else ", confidence not calibrated"
        if self.status == "attributed":
            text = f"from {b(self.model)}{conf}"
        elif self.status == "inconclusive":
            text = f"{b('inconclusive')}: leans to {self.model}{conf}, inside the 0.90 band"
        else:
            text = f"{b('unknown')}: no known model claims it"
        if self.near_tie:
            text += (
                f"; {b('near-tie')} with {self.runner_up} (margin {self.margin:.3f} < {NEAR_TIE_MARGIN}): "
                "either may be the source, or a relative of both"
            )
        if self.disagreements:
            text += f"; {b('provenance disagrees')}: " + "; ".join(self.disagreements)
        return text

    def row(self) -> dict:
        """The batch table's row."""
        return {
            "file": self.source,
            "verdict": self.label,
            "confidence": None if self.confidence is None else round(self.confidence, 3),
            "best model": self.best_model or "",
            "margin": None if self.margin is None else round(self.margin, 3),
            "warnings": len(self.warnings) + len(self.disagreements),
            "sha256": self.sha256,
        }


def summarise(result: Attribution, disagreements: Sequence[str] = ()) -> Verdict:
    """The headline facts of one attribution (``disagreements`` from :func:`engine.provenance.signals.compare`)."""
    ranking = result.ranking
    top = ranking[0] if ranking else {}
    confidence = top.get("confidence")
    claiming = [r for r in ranking if r.get("claims") and r.get("reliable", True)]
    margin = runner_up = None
    if result.verdict != UNKNOWN and len(claiming) > 1:
        runner_up = claiming[1]["model"]
        margin = float(claiming[0]["score"]) - float(claiming[1]["score"])
    if result.verdict == UNKNOWN:
        status, model = "unknown", None
    elif top.get("calibrated") == "inconclusive":
        status, model = "inconclusive", result.verdict
    else:
        status, model = "attributed", result.verdict
    return Verdict(
        source=result.source,
        sha256=result.sha256,
        status=status,
        model=model,
        best_model=top.get("model"),
        confidence=None if confidence is None or status == "unknown" else float(confidence),
        margin=margin,
        runner_up=runner_up,
        near_tie=margin is not None and margin < NEAR_TIE_MARGIN,
        warnings=list(result.warnings),
        disagreements=list(disagreements),
    )


def model_rows(fingerprints: Sequence[Fingerprint]) -> list[dict]:
    """The models compared, with the held-out accuracy that says how far each can be trusted."""
    rows = []
    for fp in fingerprints:
        acc = (fp.test_metrics or {}).get("accuracy")
        rows.append(
            {
                "model": fp.name,
                "method": fp.method,
                "extractor": fp.extractor,
                "crop": fp.crop,
                "held-out accuracy": None if acc is None else round(float(acc), 3),
                "checked": "held-out"
                if acc is not None
                else ("training only" if detector_accuracy(fp) is not None else "not checked"),
            }
        )
    return rows


def _table(rows: list[dict], columns: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if r.get(c) is None else str(r.get(c)))}</td>" for c in columns)
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #bbb;padding:4px 8px;text-align:left;font-size:14px;vertical-align:top}
th{background:#eee}.warn{color:#9a5b00}.bad{color:#b00020;font-weight:bold}code{font-size:12px;word-break:break-all}
section{border:1px solid #ddd;border-radius:6px;padding:.5em 1em;margin:1em 0}"""


def case_report_html(
    verdicts: Sequence[Verdict],
    results: Sequence[Attribution],
    fingerprints: Sequence[Fingerprint],
    provenance: Sequence[list[dict]] | None = None,
    created: str | None = None,
) -> str:
    """A standalone HTML page (no scripts, no external files) recording one attribution batch.

    ``provenance``: per image, its signals as dicts (kind, value, strength, evidence).
    """
    from engine import __version__

    created = created or time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>DIF Lineage case "
        f"report</title><style>{_STYLE}</style></head><body>",
        "<h1>DIF Lineage case report</h1>",
        f"<p>Created {esc(created)} with DIF Lineage engine {esc(__version__)}. {len(verdicts)} image(s) compared "
        f"against {len(fingerprints)} model(s).</p>",
        "<p>How to read it: a verdict names the known model whose fingerprint best matches the image; its confidence "
        "is that model's "
        "calibrated probability of a correct decision (0.90 band). <b>inconclusive</b> means the best match is inside "
        "the band; "
        "<b>unknown</b> means no known model claims the image (most likely a generator not in the store); a "
        "<b>near-tie</b> means "
        "two models claim it almost equally (often parent and fine-tune).</p>",
        "<h2>Summary</h2>",
        _table(
            [v.row() for v in verdicts], ("file", "verdict", "confidence", "best model", "margin", "warnings", "sha256")
        ),
        "<h2>Models compared</h2>",
        _table(model_rows(fingerprints), ("model", "method", "extractor", "crop", "held-out accuracy", "checked")),
        "<h2>Images</h2>",
    ]
    for i, (v, r) in enumerate(zip(verdicts, results)):
        parts.append(
            f"<section><h3>{esc(v.source)}</h3><p>SHA-256 "
            f"<code>{esc(v.sha256)}</code></p><p><b>{esc(v.headline())}</b></p>"
        )
        ranking = [
            {
                "model": x["model"],
                "score": f"{x['score']:+.3f}",
                "claims": "yes" if x.get("claims") else "no",
                "confidence": "" if x.get("confidence") is None else f"{x['confidence']:.3f}",
                "calibrated": x.get("calibrated", ""),
            }
            for x in r.ranking
        ]
        parts.append(_table(ranking, ("model", "score", "claims", "confidence", "calibrated")))
        for w in v.warnings:
            parts.append(f"<p class='warn'>warning: {esc(w)}</p>")
        for d in v.disagreements:
            parts.append(f"<p class='bad'>provenance disagrees: {esc(d)}</p>")
        signals = (provenance[i] if provenance is not None and i < len(provenance) else None) or []
        parts.append(
            "<p>Provenance signals:</p>" + _table(signals, ("strength", "kind", "value", "evidence"))
            if signals
            else "<p>Provenance signals: none found (absence says nothing: metadata is easily stripped).</p>"
        )
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
