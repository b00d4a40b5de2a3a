"""Rich terminal rendering of run summaries and audit reports."""

from __future__ import annotations

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from ..summary import RunSummary


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def summary_panel(summary: RunSummary) -> Panel:
    """The run facts as a panel."""
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    cpr = summary.clients_per_round
    rounds = (
        f"{summary.rounds} ({summary.first_round}..{summary.last_round})" if summary.rounds else "0"
    )
    facts.add_row("rounds", rounds)
    facts.add_row(
        "clients per round", f"min {cpr['min']:g} · median {cpr['median']:g} · max {cpr['max']:g}"
    )
    facts.add_row("distinct clients", str(summary.distinct_clients))
    facts.add_row("parameters", f"{summary.parameters:,} in {len(summary.layers)} layers")
    facts.add_row("size on disk", f"{_size(summary.file_size)} (compression: {summary.compression})")
    facts.add_row("client metrics", escape(", ".join(summary.client_metrics)) or "none")
    facts.add_row("global metrics", escape(", ".join(summary.global_metrics)) or "none")
    truth = "none" if summary.ground_truth is None else escape(", ".join(summary.ground_truth) or "(no malicious client)")
    facts.add_row("ground truth", truth)
    facts.add_row("final state", "yes" if summary.final_state else "no")
    facts.add_row("failed replies", str(summary.failures))
    n_bad = len(summary.nonfinite_updates)
    facts.add_row("NaN/Inf", f"[bold red]{n_bad} client updates hold NaN/Inf[/]" if n_bad else "none found")
    if summary.attachments:
        facts.add_row("attachments", escape(", ".join(summary.attachments)))
    if summary.meta:
        facts.add_row("meta", escape(", ".join(f"{k}={v}" for k, v in sorted(summary.meta.items()))))
    facts.add_row("format", f"v{summary.format_version}, recorder {escape(summary.recorder_version)}, created {summary.created}")
    if summary.recovered:
        facts.add_row("[yellow]recovered[/]", "the writer was interrupted mid-round; read as of its last committed round")
    return Panel(facts, title=f"[bold]{escape(summary.path)}[/]", title_align="left")


def layer_table(summary: RunSummary) -> Table:
    table = Table(title="layers", title_justify="left")
    table.add_column("#", justify="right", style="dim")
    table.add_column("name")
    table.add_column("shape")
    table.add_column("dtype")
    table.add_column("parameters", justify="right")
    for i, layer in enumerate(summary.layers):
        note = "" if layer.analysable else " [dim](not analysed)[/]"
        table.add_row(str(i), escape(layer.name) + note, str(list(layer.shape)), layer.dtype, f"{layer.parameters:,}")
    return table


def render_summary(console: Console, summary: RunSummary) -> None:
    """Print what ``fedforensics inspect`` shows."""
    parts = [summary_panel(summary), layer_table(summary)]
    if summary.nonfinite_updates:
        bad = Table(title="updates with NaN/Inf", title_justify="left")
        bad.add_column("round:client")
        bad.add_column("values", justify="right")
        for key, count in list(summary.nonfinite_updates.items())[:20]:
            bad.add_row(escape(key), str(count))
        parts.append(bad)
    console.print(Group(*parts))
