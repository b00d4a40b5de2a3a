"""The benchmark scripts still start: their figures in docs/ can only be re-made while they import."""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

#: Imports every benchmark module (each runs its work under ``if __name__ == "__main__"`` only) and prints those
#: that fail, one per line. In a process of its own: the red-team scripts put modules named ``data`` and ``models``
#: on the path.
IMPORT_ALL = """
import importlib, sys
sys.path.insert(0, sys.argv[1])
for name in sys.argv[2:]:
    try:
        importlib.import_module(name)
    except BaseException as exc:
        print(f"{name}: {type(exc).__name__}: {exc}")
"""


def test_every_benchmark_script_imports():
    names = sorted(path.stem for path in BENCHMARKS.glob("*.py"))
    assert "redteam_inversion" in names and len(names) > 20
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, str(BENCHMARKS), *names], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "", f"benchmarks that no longer import:\n{done.stdout}"


#: Runs every script named on the command line as ``SCRIPT --help`` in this one process (the imports shared: a
#: process each took 45 s in all) and prints, as JSON, each one's exit code and what it printed.
HELP_ALL = """
import contextlib, io, json, runpy, sys
out = {}
for path in sys.argv[1:]:
    folder = path.rsplit("/", 1)[0]
    sys.path.insert(0, folder)
    sys.argv = [path, "--help"]
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            runpy.run_path(path, run_name="__main__")
        code = "returned without exiting"
    except SystemExit as done:
        code = done.code or 0
    except BaseException as exc:
        code = f"{type(exc).__name__}: {exc}"
    sys.path.remove(folder)
    for name in ("data", "models"):  # each red team's own modules of these names
        sys.modules.pop(name, None)
    out[path] = {"code": code, "printed": printed.getvalue()}
print(json.dumps(out))
"""


def scripts() -> list[Path]:
    """Every benchmark and red-team script (a file that parses a command line; the red teams' ``data`` and
    ``models`` are modules)."""
    files = sorted(BENCHMARKS.glob("*.py")) + sorted((BENCHMARKS / "redteam").glob("*.py"))
    return [f for f in files if '__name__ == "__main__"' in (text := f.read_text()) or "parse_args(" in text]


def documented_flags() -> dict[str, set[str]]:
    """The options the docs and the scripts' docstrings pass to each script, in their re-run commands: inline code
    (``…`` or `…`) and the lines of code blocks that run ``benchmarks/SCRIPT.py``."""
    root = BENCHMARKS.parent
    texts = [p.read_text() for p in [root / "README.md", *sorted((root / "docs").glob("*.md")), *scripts()]]
    commands: list[tuple[str, str]] = []
    for text in texts:
        blocks = re.findall(r"^```.*?^```", text, flags=re.S | re.M)
        for block in blocks:
            text = text.replace(block, "")
        lines = "\n".join(blocks + re.findall(r"^ {4}.*$", text, flags=re.M)).replace("\\\n", " ")
        commands += re.findall(r"benchmarks/([\w/]+)\.py([^\n`]*)", lines)
        commands += re.findall(r"`[^`]*?benchmarks/([\w/]+)\.py([^`]*)`", text)
    flags: dict[str, set[str]] = {}
    for script, rest in commands:
        rest = re.split(r"#|benchmarks/", rest)[0]
        flags.setdefault(script, set()).update(re.findall(r"(?<![\w-])--[a-z][a-z-]*", rest))
    return flags


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory) -> Path:
    """Where the scripts' runs go (FEDFORENSICS_BENCH_CACHE) while their --help is asked."""
    return tmp_path_factory.mktemp("bench")


@pytest.fixture(scope="module")
def helps(bench_cache) -> dict[str, dict[str, object]]:
    """Each script's ``--help``: its exit code and what it printed, by its name under benchmarks/ without ``.py``."""
    paths = scripts()
    assert BENCHMARKS / "redteam" / "fedavg.py" in paths and BENCHMARKS / "redteam" / "data.py" not in paths
    # where the scripts write (their caches), so that one which ignored --help would leave files there
    out = bench_cache
    env = {k: v for k, v in os.environ.items() if k not in ("TWELFTH_OUT", "THIRTEENTH_OUT")} | {"FEDFORENSICS_BENCH_CACHE": str(out)}
    done = subprocess.run(
        [sys.executable, "-c", HELP_ALL, *map(str, paths)], capture_output=True, text=True, timeout=300, env=env, cwd=out
    )
    assert done.returncode == 0, done.stderr
    assert list(out.iterdir()) == [], "--help wrote files"
    return {Path(path).relative_to(BENCHMARKS).with_suffix("").as_posix(): r for path, r in json.loads(done.stdout).items()}


def test_every_benchmark_script_answers_help(helps):
    failed = {name: r["code"] for name, r in helps.items() if r["code"] != 0 or not str(r["printed"]).startswith("usage:")}
    assert failed == {}, "scripts that do not answer --help with their usage"


def test_the_documented_options_are_the_scripts_own(helps):
    flags = documented_flags()
    assert {"detection_bench", "trigger_bench", "redteam/numpy_mlp", "scenarios"} <= set(flags)
    taken = {name: set(re.findall(r"--[a-z][a-z-]*", str(r["printed"]))) for name, r in helps.items()}
    unknown = {name: sorted(used - taken.get(name, set())) for name, used in flags.items()}
    assert {name: used for name, used in unknown.items() if used} == {}, "documented options the scripts do not take"


def test_every_script_reads_and_writes_runs_in_the_moved_cache(helps, bench_cache):
    """FEDFORENSICS_BENCH_CACHE moves the benchmarks' cache: the twelfth and thirteenth checks wrote their runs to
    benchmarks/.cache/ all the same, and norm_jumps.py read the runs there."""
    for name, folder in [("redteam/fresh_fedavg", "twelfth"), ("redteam/clean_fedavg", "thirteenth"), ("norm_jumps", "")]:
        assert str(bench_cache / folder).rstrip("/") in "".join(str(helps[name]["printed"]).split()), name


def test_importing_the_twelfth_check_makes_no_folder(tmp_path):
    """Importing it (as test_every_benchmark_script_imports does) left an empty benchmarks/.cache/twelfth in the
    checkout: its harness made its output folder on import."""
    out = tmp_path / "twelfth"
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL, str(BENCHMARKS), "twelfth_check"],
        capture_output=True, text=True, timeout=120, env=dict(os.environ, TWELFTH_OUT=str(out)),
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr
    assert not out.exists()


def test_unseen_settings_tabulates_only_the_groups_asked_for(monkeypatch):
    """``--groups``: a judge can re-run one group of the 136 federations (an hour to simulate them all)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import unseen_settings

    simulated = []

    class InProcess:
        def __init__(self, jobs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        map = staticmethod(map)

    monkeypatch.setattr(unseen_settings, "ensure_configs", lambda configs, jobs: simulated.extend(configs))
    monkeypatch.setattr(unseen_settings, "ProcessPoolExecutor", InProcess)
    monkeypatch.setattr(unseen_settings, "audit", lambda path: ("0 of 0", [], "0.90", "–"))
    text = unseen_settings.tables(1, ["probe", "first"])
    assert [line for line in text.splitlines() if line.startswith("####")] == ["#### probe", "#### first"]
    assert len(simulated) == len(unseen_settings.SETTINGS["first"]) + len(unseen_settings.SETTINGS["probe"]) == 16
    assert text.count("| 0.90 |") == 16


def test_the_thirteenth_check_runs_the_configurations_named_and_refuses_an_unknown_one(monkeypatch):
    """A mistyped configuration recorded nothing and said nothing; NAME-prefix and PREFIX@sN pick as documented."""
    monkeypatch.syspath_prepend(str(BENCHMARKS / "redteam"))
    import clean_fedavg

    names = lambda args: [c["name"] for c in clean_fedavg.selected(args)]  # noqa: E731
    assert names(["20@s2", "01"]) == ["20_mlp_mixed_E_B@s2", "01_logreg_iid"]
    assert names(["20@s2"]) == ["20_mlp_mixed_E_B@s2"]
    assert clean_fedavg.selected(["25@s3"])[0]["seed"] == 3
    assert len(names([])) == len(clean_fedavg.CONFIGS)
    with pytest.raises(SystemExit, match="no configuration '99_x'"):
        clean_fedavg.selected(["99_x"])


def test_the_attack_tables_name_the_seeds_they_pool(monkeypatch):
    """``attacks_bench.py --seeds 0 --print`` headed its table 'over seeds 0, 1, 2'."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import attacks_bench
    from scenarios import Scenario

    history = [{"accuracy": 0.9, "attack_success": 0.5}] * 30
    histories = {Scenario(attack, fraction, "iid", seed): history for attack, fraction in [("none", 0.0), ("backdoor", 0.2)] for seed in (0, 4)}
    text = attacks_bench.render(histories, {s: 0.1 for s in histories if s.attack == "none"})
    assert "### Final accuracy and attack success (mean [min–max] over seeds 0, 4)" in text


def test_only_picks_federations_by_glob_or_substring_and_refuses_a_pattern_that_matches_none(monkeypatch, capsys):
    """``--only``: a judge re-runs one row of a red team's table instead of all its federations (up to half an hour)."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from scenarios import group, selected

    names = ["a_alie_20_a05_m4_s0", "a_alie_20_a05_m4_s1", "a_ipm_20_a05_m4_s0", "clean_tab_iid_s3"]
    assert selected(names, None, "x") == names
    assert selected(names, ["alie"], "x") == names[:2]  # a substring
    assert selected(names, ["a_*_s0"], "x") == [names[0], names[2]]  # a glob, on the whole name
    assert selected(names, ["*_m4"], "x", group) == names[:3]  # or on the name the table prints
    assert selected(names, ["ipm", "clean_tab*"], "x") == names[2:]
    with pytest.raises(SystemExit) as refused:
        selected(names, ["ipm", "a_krum*"], "numpy_bench.py", group)
    assert refused.value.code == 2
    assert capsys.readouterr().err == (
        "numpy_bench.py: --only 'a_krum*' matches none of: a_alie_20_a05_m4; a_ipm_20_a05_m4; clean_tab_iid\n"
    )


def test_a_red_team_subset_records_only_its_federations_and_leaves_the_doc_as_it_is(monkeypatch, tmp_path, capsys):
    """With ``--only`` the table holds a part of the federations: printed, never written over the whole one."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import scenarios

    runs = tmp_path / "runs.txt"
    runs.write_text("# name, then arguments\nbd_s0 --attack bd\nbd_s1 --attack bd\nclean_s0 --attack none\n")
    recorded = {}
    monkeypatch.setattr(scenarios, "record_listed", lambda listed, out, command, jobs: recorded.update(listed) or [])
    monkeypatch.setattr(sys, "argv", ["x_bench.py", "--only", "bd"])
    doc = tmp_path / "detection.md"
    args, listed, _ = scenarios.listed_federations("x", runs, tmp_path, ["fl.py", "OUT"], doc, scenarios.group)
    assert list(listed) == list(recorded) == ["bd_s0", "bd_s1"] and args.only == ["bd"]
    doc.write_text("prose\n<!-- x:start -->\nthe whole table\n<!-- x:end -->\n")
    scenarios.publish("| bd (2) |", doc, "x", args.print, "--only")
    assert "the whole table" in doc.read_text()
    assert capsys.readouterr().out == "| bd (2) |\n"
    scenarios.publish("| every row |", doc, "x", False)
    assert "the whole table" not in doc.read_text() and "| every row |" in doc.read_text()


#: Prints the federations ``redteam_inversion.py --only ARGS`` inverts (its red team's ``data`` and ``models`` on the
#: path: in a process of its own).
INVERTED = """
import sys
sys.path.insert(0, sys.argv[1])
import redteam_inversion
print(" ".join(redteam_inversion.inverted(sys.argv[2:], "redteam_inversion.py")))
"""


def test_redteam_inversion_inverts_only_the_federations_asked_for():
    names = lambda *patterns: subprocess.run(  # noqa: E731
        [sys.executable, "-c", INVERTED, str(BENCHMARKS), *patterns], capture_output=True, text=True, timeout=120
    )
    every = names().stdout.split()
    assert len(every) > 20 and "bd_tab_mlpln_iid" in every and not any(name.startswith("ipm_") for name in every)
    assert names("bd_tab_mlpln*").stdout.split() == ["bd_tab_mlpln_iid", "bd_tab_mlpln_iid_s2"]
    refused = names("ipm_tab")  # in runs.txt, but no backdoor to invert
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.startswith("redteam_inversion.py: --only 'ipm_tab' matches none of: ") and refused.stderr.count("\n") == 1


def test_unseen_settings_tabulates_only_the_settings_asked_for(monkeypatch, capsys):
    """``--only``: one row of the unseen settings' tables, its group's heading kept, a pattern matching none refused."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import unseen_settings

    simulated = []
    monkeypatch.setattr(unseen_settings, "ensure_configs", lambda configs, jobs: simulated.extend(configs))
    monkeypatch.setattr(unseen_settings, "ProcessPoolExecutor", lambda jobs: contextlib.nullcontext(builtins))
    monkeypatch.setattr(unseen_settings, "audit", lambda path: ("0 of 0", [], "0.90", "–"))
    text = unseen_settings.tables(1, None, ["MLP, clean", "*α = 0.1, clean, seed 15"])  # a substring, a glob
    assert [line for line in text.splitlines() if line.startswith(("####", "| ")) and "| setting |" not in line] == [
        "#### first", "| MLP, clean | 0.90 | – | 0 of 0 | none |",
        "#### crafted", "| MLP, clean, seed 13 | 0.90 | – | 0 of 0 | none |", "| α = 0.1, clean, seed 15 | 0.90 | – | 0 of 0 | none |",
    ]  # fmt: skip
    assert simulated == [
        unseen_settings.SimulationConfig(**unseen_settings.SETTINGS[group][name])
        for group, name in [("first", "MLP, clean"), ("crafted", "MLP, clean, seed 13"), ("crafted", "α = 0.1, clean, seed 15")]
    ]
    with pytest.raises(SystemExit) as refused:
        unseen_settings.tables(1, ["first"], ["α = 0.1"])  # in "crafted", not in "first"
    assert refused.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("unseen_settings.py: --only 'α = 0.1' matches none of: 20 clients, 10 per round, backdoor; ")
    assert err.count("\n") == 1 and "seed 15" not in err


def test_inversion_quality_inverts_only_the_models_asked_for(monkeypatch, capsys):
    """``--only`` on the trigger-inversion table's models; the summary of a part has a row for its groups alone."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import inversion_quality as iq

    assert len(iq.models(None, "x")) == 2 * (6 + 9 + 5)
    assert list(iq.models(["MLP, IID, backdoor, seed 3"], "x")) == ["MLP, IID, backdoor, seed 3"]
    picked = iq.models(["*, clean, seed 5"], "x")
    assert list(picked) == ["CNN, IID, clean, seed 5", "MLP, IID, clean, seed 5"]
    group, _, scenario = picked["MLP, IID, clean, seed 5"]
    assert (group, scenario.attack, scenario.partition, scenario.seed, scenario.extra) == ("MLP, IID", "none", "iid", 5, (("model", "mlp"),))
    clean = iq.Row("MLP, IID", False, 5, 6, None, [], [], 0.5, 1.2, 3, None, 4.0)
    assert iq.summary_table([clean]).splitlines()[2:] == ["| MLP, IID | 0 | 0/0 | 0/0 | 0/0 | – | 1 | 0/1 | 0/1 | 1.20 / 1.20 |"]
    with pytest.raises(SystemExit) as refused:
        iq.models(["CNN, IID, clean, seed 7"], "inversion_quality.py")
    assert refused.value.code == 2 and "CNN, IID, clean, seed 5; MLP, IID, backdoor, seed 0" in capsys.readouterr().err


def test_a_clients_squared_benchmark_prints_sizes_other_than_its_tables_and_leaves_the_doc(monkeypatch, tmp_path, capsys):
    """``wide_rounds_bench.py --clients 500`` rewrote docs/benchmarks.md's four-row table with its one row."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import wide_rounds_bench

    doc = tmp_path / "benchmarks.md"
    doc.write_text("<!-- wide-rounds:start -->\nfour rows\n<!-- wide-rounds:end -->\n")
    monkeypatch.setattr(wide_rounds_bench, "DOC", doc)
    monkeypatch.setattr(wide_rounds_bench, "measured_rows", lambda sizes, record, row: [f"| {n} |" for n in sizes])
    for argv in (["--clients", "500"], ["--clients", "1000", "500"]):
        monkeypatch.setattr(sys, "argv", ["wide_rounds_bench.py", *argv])
        wide_rounds_bench.bench_main("x", [500, 1000], "| clients | flagged |", None, None, "wide-rounds")
        assert "four rows" in doc.read_text() and capsys.readouterr().out.endswith("| 500 |\n")
    monkeypatch.setattr(sys, "argv", ["wide_rounds_bench.py"])
    wide_rounds_bench.bench_main("x", [500, 1000], "| clients | flagged |", None, None, "wide-rounds")
    assert doc.read_text() == "<!-- wide-rounds:start -->\n| clients | flagged |\n|---|---|\n| 500 |\n| 1000 |\n<!-- wide-rounds:end -->\n"


def test_the_grid_benchmarks_run_only_the_scenarios_asked_for_and_write_only_whole_tables(monkeypatch, tmp_path, capsys):
    """``detection_bench.py --attacks backdoor`` (or ``--only``) rewrote docs/detection.md's whole-grid tables with the
    backdoor's alone; ``attacks_bench.py --seeds 0`` docs/attacks.md's likewise."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    import attacks_bench
    import detection_bench

    doc = tmp_path / "detection.md"
    whole = "<!-- detection-bench:start -->\nwhole grid\n<!-- detection-bench:end -->\n<!-- x:start -->\n<!-- x:end -->\n"
    doc.write_text(whole)
    ran = []
    monkeypatch.setattr(detection_bench, "DOC", doc)
    monkeypatch.setattr(detection_bench, "ensure", lambda scenarios, jobs: ran.append(scenarios))
    monkeypatch.setattr(detection_bench, "ProcessPoolExecutor", lambda jobs: contextlib.nullcontext(builtins))
    monkeypatch.setattr(detection_bench, "audit", lambda scenario: scenario)
    monkeypatch.setattr(detection_bench, "render", lambda outcomes: f"{len(outcomes)} federations")

    def run(module, *argv: str) -> list:
        monkeypatch.setattr(sys, "argv", [f"{module.__name__}.py", *argv])
        module.main()
        return ran.pop()

    assert {(s.name, s.seed) for s in run(detection_bench, "--only", "scaling, 20%, non-iid")} == {("scaling, 20%, non-iid", seed) for seed in (0, 1, 2)}
    assert [s.name for s in run(detection_bench, "--only", "sign*", "--seeds", "4")] == ["sign-flip, 10%, iid", "sign-flip, 20%, iid", "sign-flip, 10%, non-iid", "sign-flip, 20%, non-iid"]
    assert len(run(detection_bench, "--attacks", "backdoor")) == 12
    assert doc.read_text() == whole and capsys.readouterr().out.splitlines() == ["3 federations", "4 federations", "12 federations"]
    run(detection_bench, "--seeds", "3", "--attacks", "backdoor", "--marker", "x")  # a table of its own, written
    assert doc.read_text() == whole.replace("<!-- x:start -->\n", "<!-- x:start -->\n4 federations\n")
    with pytest.raises(SystemExit) as refused:
        run(detection_bench, "--only", "krum")
    assert refused.value.code == 2 and "matches none of: none, 0%, iid; none, 0%, non-iid; backdoor, 10%, iid; " in capsys.readouterr().err

    monkeypatch.setattr(attacks_bench, "ensure", lambda scenarios, jobs: ran.append(scenarios))
    monkeypatch.setattr(attacks_bench, "history", lambda path: [])
    monkeypatch.setattr(attacks_bench, "trigger_success", lambda path: 0.1)
    monkeypatch.setattr(attacks_bench, "render", lambda histories, chance: f"{len(histories)} federations, {len(chance)} clean")
    monkeypatch.setattr(attacks_bench, "DOC", doc)
    picked = run(attacks_bench, "--only", "dba, 20%, non-iid")  # beside the clean federations of its data
    assert sorted({s.name for s in picked}) == ["dba, 20%, non-iid", "none, 0%, non-iid"] and len(picked) == 6
    assert len(run(attacks_bench, "--seeds", "0")) == 2 * (1 + 2 * 12)
    assert doc.read_text().count("federations") == 1 and capsys.readouterr().out.splitlines() == ["6 federations, 3 clean", "50 federations, 2 clean"]
