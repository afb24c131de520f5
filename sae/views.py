"""Feature and text reports and their text and HTML views (the HTML embeds a matplotlib PNG)."""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import torch
from jaxtyping import Float
from torch import Tensor


@dataclass(frozen=True)
class Context:
    """A stretch of text around the token where a feature fired."""

    activation: float
    tokens: list[str]  # the window's tokens
    values: list[float]  # the feature's activation at each of them
    peak: int  # index of the strongest token in ``tokens``


@dataclass
class FeatureReport:
    feature: int
    sae_id: str
    hook: str
    contexts: list[Context]
    top_logits: list[tuple[str, float]]
    bottom_logits: list[tuple[str, float]]
    activations: Tensor  # every non-zero activation seen (for the histogram)
    tokens_seen: int
    frequency: float = field(init=False)

    def __post_init__(self) -> None:
        self.frequency = self.activations.numel() / max(self.tokens_seen, 1)

    def to_text(self) -> str:
        return feature_text(self)

    def to_html(self) -> str:
        return feature_html(self)


@dataclass
class TextReport:
    sae_id: str
    hook: str
    tokens: list[str]
    top: list[list[tuple[int, float]]]  # per token: (feature, activation), strongest first

    def to_text(self) -> str:
        return text_text(self)

    def to_html(self) -> str:
        return text_html(self)


def histogram(values: Float[Tensor, " n"], bins: int = 30) -> tuple[list[int], list[float]]:
    """Counts and bin edges of the non-zero activations."""
    if values.numel() == 0:
        return [], []
    counts, edges = torch.histogram(values.float(), bins=bins)
    return [int(c) for c in counts.tolist()], [float(e) for e in edges.tolist()]


def _show(token: str) -> str:
    return token.replace("\n", "\\n")


def _marked(context: Context) -> str:
    return "".join(
        f"[[{_show(t)}]]" if i == context.peak else _show(t) for i, t in enumerate(context.tokens)
    )


def feature_text(report: FeatureReport) -> str:
    lines = [
        f"Feature {report.feature} of SAE {report.sae_id!r} at {report.hook}",
        f"fires on {report.frequency:.2%} of {report.tokens_seen} tokens"
        + (f", max {float(report.activations.max()):.2f}" if report.activations.numel() else ""),
    ]
    if report.top_logits:
        lines.append(
            "logit lens, promotes: "
            + "  ".join(f"{_show(t)!r} {v:+.2f}" for t, v in report.top_logits)
        )
        lines.append(
            "logit lens, suppresses: "
            + "  ".join(f"{_show(t)!r} {v:+.2f}" for t, v in report.bottom_logits)
        )
    lines.append("top contexts ([[token]] = where it fires most):")
    lines += [f"  {c.activation:8.2f}  {_marked(c)}" for c in report.contexts] or [
        "  (never fires)"
    ]
    counts, edges = histogram(report.activations, bins=10)
    if counts:
        lines.append("activation histogram (non-zero):")
        peak = max(counts)
        for count, lo, hi in zip(counts, edges[:-1], edges[1:], strict=True):
            lines.append(
                f"  {lo:7.2f}-{hi:7.2f} "
                f"{'#' * max(1, round(30 * count / peak)) if count else ''} {count}"
            )
    return "\n".join(lines)


def text_text(report: TextReport) -> str:
    lines = [f"Top features per token, SAE {report.sae_id!r} at {report.hook}"]
    width = max((len(_show(t)) for t in report.tokens), default=1)
    for token, top in zip(report.tokens, report.top, strict=True):
        cells = "  ".join(f"{f}:{v:.2f}" for f, v in top) or "-"
        lines.append(f"  {_show(token)!s:<{width}}  {cells}")
    return "\n".join(lines)


# ------------------------------------------------------------------------------- HTML
_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto}"
    ".ctx{font-family:monospace;white-space:pre-wrap;margin:.3em 0}"
    ".tok{border-radius:3px}table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left}"
)


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>\n"
    )


def _span(token: str, value: float, peak: float, note: str = "") -> str:
    alpha = 0.0 if peak <= 0 else min(1.0, max(0.0, value / peak))
    title = html.escape(f"{value:.3f}{note}")
    return (
        f"<span class='tok' title='{title}' style='background:rgba(255,120,0,{alpha:.2f})'>"
        f"{html.escape(token)}</span>"
    )


def histogram_png(values: Float[Tensor, " n"], title: str = "") -> bytes:
    """A PNG histogram of the non-zero activations (matplotlib, no display needed)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 2.6), dpi=100)
    if values.numel():
        axis.hist(values.float().numpy(), bins=40, color="#e67300")
    axis.set_xlabel("activation (non-zero)")
    axis.set_ylabel("tokens")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def feature_html(report: FeatureReport) -> str:
    png = base64.b64encode(histogram_png(report.activations, f"feature {report.feature}")).decode()
    parts = [
        f"<p>SAE <b>{html.escape(report.sae_id)}</b> at <code>{html.escape(report.hook)}</code>; "
        f"fires on {report.frequency:.2%} of {report.tokens_seen} tokens.</p>"
    ]
    if report.top_logits:
        rows = "".join(
            f"<tr><td>{html.escape(a)}</td><td>{x:+.2f}</td><td>{html.escape(b)}</td><td>{y:+.2f}</td></tr>"
            for (a, x), (b, y) in zip(report.top_logits, report.bottom_logits, strict=True)
        )
        parts.append(
            f"<h2>Logit lens</h2><table><tr><th>promotes</th><th></th><th>suppresses</th>"
            f"<th></th></tr>{rows}</table>"
        )
    parts.append("<h2>Top-activating contexts</h2>")
    for c in report.contexts:
        spans = "".join(_span(t, v, c.activation) for t, v in zip(c.tokens, c.values, strict=True))
        parts.append(f"<div class='ctx'><b>{c.activation:.2f}</b> {spans}</div>")
    if not report.contexts:
        parts.append("<p>The feature never fired on this text.</p>")
    parts.append(
        f"<h2>Activation histogram</h2><img alt='histogram' src='data:image/png;base64,{png}'>"
    )
    return _page(f"Feature {report.feature}", "".join(parts))


def text_html(report: TextReport) -> str:
    peak = max((top[0][1] for top in report.top if top), default=0.0)
    spans = "".join(
        _span(token, top[0][1] if top else 0.0, peak, "".join(f"\n{f}: {v:.2f}" for f, v in top))
        for token, top in zip(report.tokens, report.top, strict=True)
    )
    rows = "".join(
        f"<tr><td>{html.escape(_show(t))}</td>"
        f"<td>{', '.join(f'{f} ({v:.2f})' for f, v in top)}</td></tr>"
        for t, top in zip(report.tokens, report.top, strict=True)
    )
    body = (
        f"<p>SAE <b>{html.escape(report.sae_id)}</b> at <code>{html.escape(report.hook)}</code>. "
        f"Hover a token for its top features.</p><div class='ctx'>{spans}</div>"
        f"<table><tr><th>token</th><th>top features (activation)</th></tr>{rows}</table>"
    )
    return _page("Active features per token", body)
