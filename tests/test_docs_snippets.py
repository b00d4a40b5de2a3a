"""The Python examples of README.md and docs/ run as written (given the names their text says the reader's loop holds)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np

from fedforensics import open_run

from synthetic import make_run

ROOT = Path(__file__).resolve().parents[1]


def snippet(doc: str, after: str) -> str:
    """The first ```python block of ``doc`` (a path from the repository's root) after the text ``after``."""
    section = (ROOT / doc).read_text().split(after, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run_snippet(doc: str, after: str, **names: object) -> dict:
    """Run the snippet with ``names`` defined, as a reader's script would; what it defined."""
    scope = {"__name__": "docs_snippet", **names}
    exec(compile(snippet(doc, after), str(ROOT / doc), "exec"), scope)
    return scope


def test_the_evaluation_snippet_runs_both_ways(tmp_path, monkeypatch):
    """docs/html-report.md offered ``evaluate_report(report, truth)`` as a drop-in for ``evaluate_runs`` before
    ``.to_json()["pooled"]``: it returns one run's judgements, which have no "pooled" (a KeyError)."""
    make_run(tmp_path / "a.h5", attackers=("c3",), attack="boost", rounds=8)
    make_run(tmp_path / "b.h5", attackers=("c1",), attack="boost", rounds=8, seed=1)
    monkeypatch.chdir(tmp_path)
    scope = run_snippet("docs/html-report.md", "## `fedforensics evaluate")
    assert scope["pooled"][-1]["name"] == "consensus" and scope["pooled"][-1]["attackers"] == 2
    consensus = scope["judged"][-1]
    assert consensus["name"] == "consensus" and consensus["attackers"] == 1


class _Model:
    """What the README's loop calls ``global_model``: a module with a ``state_dict()``."""

    def __init__(self, state: dict) -> None:
        self.state = state

    def state_dict(self) -> dict:
        return self.state


def _loop_names(rng) -> dict:
    """The names the recorder snippets take from the reader's loop: three rounds of three clients."""
    state = {"fc.weight": np.zeros((3, 4), np.float32), "fc.bias": np.zeros(3, np.float32)}
    results = [(f"c{i}", {k: v + rng.normal(size=v.shape) for k, v in state.items()}, 10 + i, {"loss": 0.5}) for i in range(3)]
    return {"num_rounds": 3, "global_model": _Model(state), "global_state": state, "results": results}


def test_the_readme_recording_snippet_records_every_round(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_snippet("README.md", "## Record your own federation", **_loop_names(np.random.default_rng(0)))
    with open_run(tmp_path / "run.h5") as run:
        assert run.rounds == [0, 1, 2] and run.clients(2) == ["c0", "c1", "c2"] and run.num_samples(1)["c2"] == 12
        assert run.metrics(0)["c1"] == {"loss": 0.5} and run.meta == {"dataset": "digits"}
        assert run.finished and run.has_final_state


def test_the_contracts_recording_snippet_records_what_it_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = np.zeros((4, 1, 2, 2), np.float32), np.arange(4)
    run_snippet("docs/CONTRACTS.md", "## Recorder", x_test=x, y_test=y, **_loop_names(np.random.default_rng(0)))
    with open_run(tmp_path / "run.h5") as run:
        assert run.rounds == [0, 1, 2] and run.failures(1) == {"c9": "timeout"}
        assert run.global_metrics(2) == {"accuracy": 0.93, "attack_success": 0.12}
        assert run.ground_truth == ["c3", "c7"] and run.has_final_state and run.finished
        np.testing.assert_array_equal(run.attachment("clean_data")["x"], x)


def _command_lines() -> list[tuple[str, str, bool]]:
    """Each ``fedforensics COMMAND ...`` of README.md and docs/: (page, the words up to a comment or pipe, whether it
    is a whole command line of a bash block rather than a mention in the text)."""
    found = []
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = page.read_text()
        for block in re.findall(r"```bash\n(.*?)```", text, re.S):
            found += [(page.name, line.split("fedforensics ", 1)[1], True) for line in block.splitlines() if "fedforensics " in line]
        found += [(page.name, mention, False) for mention in re.findall(r"`fedforensics ([a-z]+(?: [^`\n]*)?)`", text)]
    return [(page, re.split(r" +#| \|", words)[0], whole) for page, words, whole in found if not words.startswith("[")]


def test_every_command_line_of_the_docs_parses():
    """The command lines of the bash blocks parse with the CLI's own parser, and every option the text mentions is one
    of its command's (the docs are full of both; an option renamed in the code left them behind unseen)."""
    import click
    import typer.main

    from fedforensics.cli import app

    commands = typer.main.get_command(app).commands
    wrong = []
    for page, line, whole in _command_lines():
        name, *args = shlex.split(line)
        command = commands.get(name)
        if command is None:
            wrong.append((page, line, "no such command"))
        elif whole:
            try:
                command.make_context(name, args)
            except click.ClickException as exc:
                wrong.append((page, line, exc.format_message()))
        else:
            options = {option for param in command.params for option in (*param.opts, *param.secondary_opts)}
            wrong += [(page, line, word) for word in args if word.startswith("-") and word.split("=")[0] not in options]
    assert wrong == []


def test_the_contracts_reader_summary_names_what_a_run_has(tmp_path):
    """CONTRACTS.md's reader block is a summary, not a script: each ``run.NAME`` it lists is an attribute of a run, and
    each layer attribute it lists one of a layer."""
    block = snippet("docs/CONTRACTS.md", "## Reader")
    names = set(re.findall(r'(?<!")\brun\.(\w+)', block))
    of_layer = re.findall(r"\.(\w+)", re.search(r"run\.layers \(each ([^)]*)\)", block).group(1))
    with open_run(make_run(tmp_path / "run.h5", rounds=3)) as run:
        assert len(names) > 15 and [name for name in sorted(names) if not hasattr(run, name)] == []
        assert len(of_layer) == 5 and [name for name in of_layer if not hasattr(run.layers[0], name)] == []
