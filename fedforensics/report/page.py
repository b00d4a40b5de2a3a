"""The shell of every HTML page fedforensics writes: one self-contained file.

Inline CSS, figures as ``data:`` URIs, no script, and a Content-Security-Policy
that forbids fetching anything, so a report opened from an e-mail or a ticket
can neither phone home nor run code, even if a string slipped past escaping.
Every helper takes plain text and escapes it; arguments named ``*_html`` are
markup that the caller built from escaped parts. The words the pages share with the
terminal (counts, rates, sizes, the reports' sentences) are in :mod:`.wording`.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from recorder import __version__

from .escapes import shown

#: One colour per verdict, everywhere: badges, table rows, plots; white text on each passes WCAG AA (4.5:1) for
#: the badges (QA: 2.69 and 3.63 before).
VERDICT_COLOURS = {"malicious": "#c62828", "suspicious": "#b35c00", "benign": "#557a5b"}

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink:#1d2430; --muted:#5f6b7a; --line:#dde2e8; --panel:#f6f8fa;
        --malicious:%(malicious)s; --suspicious:%(suspicious)s; --benign:%(benign)s; }
* { box-sizing: border-box; }
body { margin:0; color:var(--ink); background:#fff; line-height:1.45;
       font:15px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "DejaVu Sans", sans-serif; }
header.top { background:#18212f; color:#fff; padding:22px 0 18px; }
header.top .kicker { text-transform:uppercase; letter-spacing:.08em; font-size:12px; color:#9fb0c6; }
header.top h1 { margin:4px 0 6px; font-size:26px; font-weight:650; word-break:break-all; }
header.top .sub { color:#c9d4e2; font-size:13px; }
main, .wrap { max-width:1120px; margin:0 auto; padding:0 24px; }
nav.toc { border-bottom:1px solid var(--line); background:var(--panel); font-size:13px; }
nav.toc .wrap { padding-top:8px; padding-bottom:8px; }
nav.toc a { color:var(--muted); text-decoration:none; margin-right:16px; white-space:nowrap; }
nav.toc a:hover { color:var(--ink); text-decoration:underline; }
section { padding:26px 0 10px; border-bottom:1px solid var(--line); }
section:last-of-type { border-bottom:0; }
h2 { font-size:20px; margin:0 0 4px; }
h3 { font-size:15px; margin:18px 0 6px; }
p.lead { color:var(--muted); margin:0 0 14px; max-width:80ch; }
.cards { display:flex; gap:14px; flex-wrap:wrap; margin:6px 0 18px; }
.card { flex:1 1 150px; border:1px solid var(--line); border-left:6px solid var(--c, var(--muted));
        border-radius:6px; padding:10px 14px; background:#fff; }
.card .n { font-size:30px; font-weight:700; color:var(--c, var(--ink)); line-height:1.1; }
.card .l { color:var(--muted); font-size:13px; }
.grid2 { display:grid; grid-template-columns: minmax(0,1fr) minmax(0,1fr); gap:22px; }
@media (max-width: 860px) { .grid2 { grid-template-columns: minmax(0,1fr); } }
.scroll { overflow-x:auto; }
table { border-collapse:collapse; width:100%%; font-size:13.5px; margin:4px 0 12px; }
th, td { text-align:left; padding:6px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { background:var(--panel); font-weight:600; color:#334; white-space:nowrap; }
td:first-child .id { display:inline-block; min-width:12ch; }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
table.facts th { width:190px; background:none; color:var(--muted); font-weight:500; }
tr.v-malicious td:first-child { box-shadow: inset 4px 0 0 var(--malicious); }
tr.v-suspicious td:first-child { box-shadow: inset 4px 0 0 var(--suspicious); }
.id { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace;
      font-size:12.5px; overflow-wrap:anywhere; white-space:pre-wrap; unicode-bidi:isolate; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600;
         color:#fff; background:var(--c); white-space:nowrap; }
.muted { color:var(--muted); }
.truth { font-size:12px; font-weight:600; color:var(--malicious); border:1px solid var(--malicious);
         border-radius:4px; padding:0 5px; white-space:nowrap; }
ul.suspects { list-style:none; padding:0; margin:0 0 10px; }
ul.suspects li { padding:8px 12px; border:1px solid var(--line); border-left:5px solid var(--c);
                 border-radius:5px; margin-bottom:8px; }
ul.evidence { margin:0; padding-left:16px; }
ul.evidence li { margin:2px 0; }
.det { font-weight:600; color:#334; }
details summary { cursor:pointer; color:var(--muted); font-size:12.5px; }
figure { margin:8px 0 16px; }
figure img { width:100%%; height:auto; display:block; border:1px solid var(--line); border-radius:6px; }
figcaption { color:var(--muted); font-size:13px; margin-top:6px; max-width:90ch; }
.note { background:#fff8e6; border:1px solid #f0d9a0; border-radius:6px; padding:8px 12px; margin:8px 0; }
.empty { color:var(--muted); font-style:italic; }
footer { color:var(--muted); font-size:12.5px; padding:18px 0 30px; }
@media print {
  nav.toc { display:none; }
  .scroll { overflow:visible; }
  header.top { background:#fff; color:var(--ink); padding:0 0 8px; border-bottom:2px solid var(--ink); }
  header.top .kicker, header.top .sub { color:var(--muted); }
  figure, tr, ul.suspects li, .card, .note { break-inside:avoid; }
  h2, h3, p.lead { break-after:avoid; }
  .badge, .truth, tr.v-malicious td:first-child, tr.v-suspicious td:first-child {
    -webkit-print-color-adjust:exact; print-color-adjust:exact; }
}
""" % VERDICT_COLOURS


def esc(value: object) -> str:
    """Text (from the run file or anywhere) made safe for HTML content and attributes, characters that would
    not show as themselves written as escapes, as the terminal does (:func:`~.escapes.shown`): an id ending in
    U+202E reversed the text after it, so that a score of 5.52 read 25.5."""
    return html.escape(shown(str(value)), quote=True)


def badge(verdict: str) -> str:
    """A verdict as a coloured label."""
    colour = VERDICT_COLOURS.get(verdict, "#5f6b7a")
    return f'<span class="badge" style="--c:{colour}">{esc(verdict)}</span>'


def card(count: int | str, label: str, colour: str | None = None) -> str:
    """A big number with its label."""
    style = f' style="--c:{colour}"' if colour else ""
    return f'<div class="card"{style}><div class="n">{esc(count)}</div><div class="l">{esc(label)}</div></div>'


def table(
    headers: Sequence[str],
    rows_html: Iterable[Sequence[str]],
    *,
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
) -> str:
    """A table from plain-text ``headers`` and rows of cells already in HTML."""
    head = "".join(f'<th class="num">{esc(h)}</th>' if i in numeric else f"<th>{esc(h)}</th>" for i, h in enumerate(headers))
    body = []
    for n, row in enumerate(rows_html):
        cls = f' class="{esc(row_classes[n])}"' if row_classes and row_classes[n] else ""
        cells = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f"<tr{cls}>{cells}</tr>")
    # scrolled in its own box: wider than a phone's screen, a table widened the whole page (a fresh-eyes auditor's
    # 390-px window laid the report out 763 px wide, every paragraph zoomed out with it)
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def facts(rows: Iterable[tuple[str, str]]) -> str:
    """A two-column table of plain-text labels and values already in HTML."""
    body = "".join(f"<tr><th>{esc(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def figure(uri: str, alt: str, caption_html: str = "") -> str:
    """An embedded image (a ``data:`` URI) with its caption."""
    if not uri.startswith("data:image/"):
        raise ValueError("figures must be embedded as data: URIs")
    caption = f"<figcaption>{caption_html}</figcaption>" if caption_html else ""
    return f'<figure><img src="{esc(uri)}" alt="{esc(alt)}">{caption}</figure>'


def section(anchor: str, title: str, body_html: str, lead_html: str = "") -> str:
    """A titled section that the table of contents links to."""
    lead = f'<p class="lead">{lead_html}</p>' if lead_html else ""
    return f'<section id="{esc(anchor)}"><h2>{esc(title)}</h2>{lead}{body_html}</section>'


def page(title: str, subtitle_html: str, sections: Sequence[tuple[str, str, str]], kicker: str) -> str:
    """The whole document: ``sections`` are ``(anchor, toc label, section html)``."""
    # spaces between the links, so that the row can wrap: joined without, it was one unbreakable line that widened
    # a phone's page to 560 px (a fresh-eyes auditor)
    toc = " ".join(f'<a href="#{esc(anchor)}">{esc(label)}</a>' for anchor, label, _ in sections)
    body = "".join(html_ for _, _, html_ in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(CSP)}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="fedforensics {esc(__version__)}">'
        '<link rel="icon" href="data:,">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header class="top"><div class="wrap"><div class="kicker">{esc(kicker)}</div>'
        f'<h1>{esc(title)}</h1><div class="sub">{subtitle_html}</div></div></header>'
        f'<nav class="toc"><div class="wrap">{toc}</div></nav>'
        f"<main>{body}</main>"
        f'<footer class="wrap">Written by fedforensics {esc(__version__)}. Self-contained: no script, '
        "nothing fetched; every figure is embedded.</footer>"
        "</body></html>\n"
    )
