"""Files the machine refuses: an output folder that takes no files, a disk that fills up.

Each command must end with exit code 2 and one line naming the file and the
system's reason, leave no partial output behind, and refuse what it can
before any long work.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fedforensics import audit
from fedforensics.cli import analyze as analyze_command
from fedforensics.cli import app
from fedforensics.report import files as report_files
from fedforensics.report import json as report_json
from recorder import Recorder

from synthetic import make_run


def invoke(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *fragments: str, after_report: bool = False) -> None:
    """Exit 2 and one error line; nothing on stdout unless the audit's report came first."""
    assert result.exit_code == 2, result.output
    assert (result.stdout != "") == after_report, result.stdout
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("files") / "run.h5", rounds=4)


def command_line(*args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it (usage errors are made one line by its entry point, not by the app)."""
    env = {**os.environ, "COLUMNS": str(columns)} if columns else None
    return subprocess.run([sys.executable, "-m", "fedforensics.cli", *args], capture_output=True, text=True, env=env)


def refuse(exc: OSError):
    def raiser(*args: object, **kwargs: object):
        raise exc

    return raiser


@pytest.mark.parametrize("option", ["--json", "--html"])
def test_a_folder_that_takes_no_files_is_refused_before_the_scan(run, tmp_path, monkeypatch, option):
    monkeypatch.setattr(report_files.tempfile, "mkstemp", refuse(PermissionError(errno.EACCES, "Permission denied")))
    monkeypatch.setattr(audit, "analyze", refuse(AssertionError("the scan started before the output was checked")))
    out = tmp_path / "report.out"
    one_line_error(invoke("analyze", run, option, out), f"cannot write {out}: Permission denied")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option", ["--json", "--html"])
def test_a_long_legal_name_is_written_and_one_too_long_refused_before_the_scan(run, tmp_path, option):
    """QA: the temporary file `.NAME.XXXXXXXX.tmp` passed 255 bytes for legal names of 242 bytes or more, which
    then failed after the whole audit; a name too long for the file system itself likewise."""
    long = tmp_path / ("a" * 250 + ".out")
    result = invoke("analyze", run, "-q", option, long)
    assert result.exit_code == 0 and long.stat().st_size > 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [long.name]
    too_long = tmp_path / ("b" * 252 + ".out")
    one_line_error(invoke("analyze", run, option, too_long), "File name too long")
    assert sorted(p.name for p in tmp_path.iterdir()) == [long.name]


def test_a_link_to_a_folder_that_cannot_take_the_report_is_refused_before_the_scan(run, tmp_path, monkeypatch):
    """QA: the check looked at the link's own folder, so the audit ran and failed at the end."""
    monkeypatch.setattr(audit, "analyze", refuse(AssertionError("the scan started before the output was checked")))
    link = tmp_path / "d.json"
    link.symlink_to(tmp_path / "nodir" / "x.json")
    one_line_error(invoke("analyze", run, "--json", link), f"folder {tmp_path / 'nodir'} does not exist")


def test_descriptors_and_devices_are_checked_as_they_are_not_by_creating_a_file_beside_them(run, monkeypatch):
    """`--json /dev/stdout` was refused for every user but root: the check created a file in /dev; `/dev/fd/1`
    even for root (QA). A descriptor must be open, a device writable."""
    monkeypatch.setattr(report_files.tempfile, "mkstemp", refuse(PermissionError(errno.EACCES, "Permission denied")))
    report_files.check_outputs([Path("/dev/stdout"), Path("/dev/fd/2"), Path("/dev/null")], [run])
    result = subprocess.run(
        f"{sys.executable} -m fedforensics.cli analyze {run} -q --json /dev/stdout >&-",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and result.stderr == "error: cannot write /dev/stdout: descriptor 1 is not open\n"


def test_a_full_disk_while_writing_a_report_is_one_line_and_leaves_no_file(run, tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    # the check before the scan makes its empty file; the report's own write meets the full disk
    monkeypatch.setattr(report_files.os, "fdopen", refuse(OSError(errno.ENOSPC, "No space left on device", str(out))))
    one_line_error(invoke("analyze", run, "--html", out), f"{out}: No space left on device", after_report=True)
    assert list(tmp_path.iterdir()) == []


def test_demo_and_simulate_name_the_path_they_cannot_create(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    one_line_error(invoke("demo", "--out", blocker / "demo", "--no-inversion"), str(blocker / "demo"))
    one_line_error(invoke("simulate", tmp_path / "missing" / "run.h5", "--rounds", "2"), "missing")
    # neither a folder tree (demo created every missing parent) nor an empty folder after a bad option
    one_line_error(invoke("demo", "--out", tmp_path / "deep" / "er" / "demo"), f"folder {tmp_path / 'deep' / 'er'} does not exist")
    one_line_error(invoke("demo", "--out", tmp_path / "demo", "--seed", "-1"), "--seed must be 0 or more")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]


def test_simulate_refuses_a_folder_or_a_fifo_as_its_run_file_by_name(tmp_path):
    """`simulate adir` said "pass --overwrite", which then failed with "adir: Is a directory"; a FIFO with
    --overwrite gave "error: Illegal seek", naming no file."""
    folder = tmp_path / "adir"
    folder.mkdir()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    for args in ([folder], [folder, "--overwrite"]):
        one_line_error(invoke("simulate", *args, "--rounds", "1"), f"{folder} is a directory")
    one_line_error(invoke("simulate", fifo, "--overwrite", "--rounds", "1"), f"{fifo} is not a regular file")


def test_simulate_refuses_standard_output_as_its_run_file(tmp_path, monkeypatch):
    """A researcher's review: `simulate -` wrote a run file named '-' in the working folder."""
    monkeypatch.chdir(tmp_path)
    one_line_error(invoke("simulate", "-", "--rounds", "1"), "'-' (standard output) cannot hold a run file")
    assert list(tmp_path.iterdir()) == []


def test_every_command_s_help_states_its_exit_codes_and_shows_defaults_readably():
    for command in ("analyze", "evaluate", "demo", "simulate", "inspect"):
        assert "Exit codes" in invoke(command, "--help").stdout and "141" in invoke(command, "--help").stdout, command
    assert "(1/3)" in invoke("simulate", "--help").stdout  # not 0.3333333333333333
    assert "--out" in invoke("demo", "--help").stdout and "_FOLDER" not in invoke("demo", "--help").stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["analyze", "{tmp}/run[final].h5"], "run[final].h5: no such file"),
        (["analyze", "{run}", "-d", "norm[/]"], "unknown detector 'norm[/]'"),
        (["evaluate", "{run}", "--truth", "{tmp}/truth[/].txt"], "truth[/].txt"),
    ],
)
def test_an_error_quotes_the_users_words_as_they_were_typed(args, message, run, tmp_path):
    """Errors went through rich markup: '[final]' vanished from a file name and '[/]' crashed the printer."""
    one_line_error(invoke(*(a.format(run=run, tmp=tmp_path) for a in args)), message)


@pytest.mark.parametrize(
    "args, message",
    [
        (["analyze", "{run}", "--json", "{run}"], "is a file being read: give the report another name"),
        (["evaluate", "{run}", "--html", "{run}"], "is a file being read: give the report another name"),
        (["inspect", "{run}", "--json", "{run}"], "is a file being read: give the report another name"),
        (["analyze", "{run}", "--json", "{out}", "--html", "{out}"], "is named for two reports: give each its own file"),
        (["analyze", "{run}", "--json", "-"], "'-' (standard output) is not supported for reports"),
        (["analyze", "{run}", "--json", "{run}.journal"], "is a file being read"),  # the writer's recovery
        (["inspect", "{run}", "--json", "{run}.journal"], "is a file being read"),
        (["evaluate", "{run}", "--json", "{run}.journal"], "is a file being read"),
        (["analyze", "{run}", "--data", "{out}", "--html", "{out}"], "is a file being read"),
        (["analyze", "{run}", "--probe-trigger", "{out}", "--json", "{out}"], "is a file being read"),
    ],
)
def test_a_report_never_overwrites_the_run_or_another_report(args, message, run, tmp_path):
    """`analyze run.h5 --json run.h5` replaced the run under audit with its report, exit 0."""
    before = run.read_bytes()
    out = tmp_path / "same.out"
    result = invoke(*(a.format(run=run, out=out) for a in args))
    one_line_error(result, message)
    assert run.read_bytes() == before and not out.exists()


def test_a_report_follows_a_symlink_and_writes_into_a_pipe_without_replacing_them(tmp_path):
    """Reports are renamed into place; renaming onto a link replaced the link, onto /dev/null (as root)
    replaced the device with a regular file, onto a FIFO left its reader with nothing."""
    import threading

    target = tmp_path / "real.json"
    link = tmp_path / "link.json"
    link.symlink_to(target)
    report_files.write_atomic(link, "report")
    assert link.is_symlink() and target.read_text() == "report"
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    report_files.write_atomic(fifo, "through the pipe")
    reader.join(timeout=10)
    assert received == ["through the pipe"] and fifo.is_fifo()


def test_json_to_dev_stdout_goes_into_the_pipe(run):
    """`--json /dev/stdout | cat` exited 2: the link was resolved to /proc/PID/fd/pipe:[N], which is no path."""
    result = subprocess.run(
        f"set -o pipefail; {sys.executable} -m fedforensics.cli analyze {run} --json /dev/stdout | cat",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr
    assert '"format": "fedforensics-report"' in result.stdout and "\n}\nJSON report: /dev/stdout" in result.stdout


def test_a_reader_that_stops_early_ends_the_command_quietly_with_the_sigpipe_status(run, tmp_path, monkeypatch):
    """`--json /dev/stdout | head -c 100` printed "error: /dev/stdout: Broken pipe" and exited 2, as for bad
    input; a reader stopping is its choice: no line, and 141 (what a shell shows for SIGPIPE) so that a
    pipeline with pipefail still sees the report was cut. A FIFO named by the auditor is still one line.
    (`| true` reads nothing: this small report fits in a pipe's buffer, so `head` made the outcome a race.)"""
    result = subprocess.run(
        f"{sys.executable} -m fedforensics.cli analyze {run} --json /dev/stdout | true; "
        "echo status ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300,
    )
    assert result.stdout == "status 141\n" and result.stderr == ""
    fifo = tmp_path / "pipe"
    monkeypatch.setattr(analyze_command, "write_json", refuse(OSError(errno.EPIPE, "Broken pipe", str(fifo))))
    one_line_error(invoke("analyze", run, "--json", fifo), f"{fifo}: Broken pipe", after_report=True)


def test_a_reader_that_stops_before_the_report_still_gets_the_report_files_written(run, tmp_path):
    """`analyze --json r.json --html r.html | true` exited 1 (what --fail-on reached means) with neither file
    written: rich ends the process on a broken pipe. The files come first; then 141, quietly."""
    json_path, html_path = tmp_path / "r.json", tmp_path / "r.html"
    result = subprocess.run(
        f"{sys.executable} -m fedforensics.cli analyze {run} --json {json_path} --html {html_path} | true; "
        "echo status ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300,
    )
    assert result.stdout == "status 141\n" and result.stderr == ""
    assert json_path.read_text().endswith("}\n") and html_path.read_text().rstrip().endswith("</html>")


def test_a_terminal_that_cannot_show_a_character_gets_a_question_mark_not_a_crash(run, tmp_path):
    """In a latin-1 locale the report's '–' raised UnicodeEncodeError (a traceback, exit 1) and the JSON was lost."""
    out = tmp_path / "r.json"
    result = subprocess.run(
        [sys.executable, "-m", "fedforensics.cli", "analyze", str(run), "--json", str(out)],
        capture_output=True, timeout=300, env={**os.environ, "PYTHONIOENCODING": "latin-1"},
    )
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert "?" in result.stdout.decode("latin-1") and out.exists()


def test_closed_pipes_on_help_or_on_the_error_line_keep_their_exit_codes(run):
    """`analyze --help | true` and an error whose reader of stderr had gone exited 1, which means --fail-on reached."""
    for command, status in (
        (f"{sys.executable} -m fedforensics.cli analyze --help | true", 141),
        (f"{sys.executable} -m fedforensics.cli analyze /no/such.h5 2>&1 >/dev/null | true", 2),
        # standard error that takes nothing (QA: exit 1): the exit code alone says it
        (f"{sys.executable} -m fedforensics.cli analyze /no/such.h5 2>/dev/full", 2),
        (f"{sys.executable} -m fedforensics.cli analyze /no/such.h5 2>&-", 2),
    ):
        result = subprocess.run(
            f"{command}; echo status ${{PIPESTATUS[0]}}", shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300
        )
        assert result.stdout == f"status {status}\n", (command, result)


def test_fail_on_keeps_exit_1_when_standard_error_takes_nothing(tmp_path):
    """Review: --fail-on's line on a full or closed standard error turned the exit into 2 (bad input)."""
    boosted = make_run(tmp_path / "boost.h5", attackers=("c3",), attack="boost")
    for redirect in ("2>/dev/full", "2>&-", ""):
        result = subprocess.run(
            f"{sys.executable} -m fedforensics.cli analyze -q --fail-on malicious {boosted} {redirect}",
            shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 1, (redirect, result.stderr)
    assert result.stderr.startswith("--fail-on malicious: 1 client reached it (c3)")


def test_a_c_locale_gets_question_marks_not_a_crash(run):
    """Python's C locale writes with surrogateescape, which cannot encode the report's '–' either (QA)."""
    env = {**os.environ, "LC_ALL": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env.pop("PYTHONIOENCODING", None)
    result = subprocess.run([sys.executable, "-m", "fedforensics.cli", "inspect", str(run)], capture_output=True, timeout=300, env=env)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    assert b" ? median " in result.stdout, result.stdout  # the summary's '·' between the round sizes, replaced


def test_running_out_of_memory_is_one_line(run, monkeypatch):
    monkeypatch.setattr(audit, "analyze", refuse(MemoryError("Unable to allocate 200. TiB for an array")))
    one_line_error(invoke("analyze", run), "not enough memory: Unable to allocate 200. TiB")


@pytest.mark.parametrize("command", ["analyze", "evaluate", "inspect"])
def test_quiet_json_to_dev_stdout_is_the_json_alone(run, command):
    """`--json /dev/stdout | jq` failed: the JSON came after the terminal report. With --quiet it is all there is;
    and --quiet in one command leaves the next one's report alone."""
    truth = ["--truth", "/dev/null"] if command == "evaluate" else []
    result = subprocess.run(
        [sys.executable, "-m", "fedforensics.cli", command, str(run), *truth, "--quiet", "--json", "/dev/stdout"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["format"].startswith("fedforensics-") if command != "inspect" else document["format_version"] == 1
    assert invoke(command, run, *truth, "-q").stdout == ""
    assert "run.h5" in invoke(command, run, *truth).stdout


@pytest.mark.parametrize("command", ["analyze", "evaluate"])
def test_reports_are_written_all_or_none(run, tmp_path, command):
    """`--json old.json --html /dev/full` replaced old.json, then failed on the HTML (QA)."""
    old = tmp_path / "old.json"
    old.write_text('{"old": 1}\n')
    truth = ["--truth", "/dev/null"] if command == "evaluate" else []
    one_line_error(invoke(command, run, *truth, "-q", "--json", old, "--html", "/dev/full"), "/dev/full: No space left on device")
    assert old.read_text() == '{"old": 1}\n' and sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


def test_an_interrupted_set_of_reports_leaves_the_earlier_files_and_no_temporary_one(tmp_path):
    first, second = tmp_path / "a.json", tmp_path / "b.html"
    first.write_text("earlier")
    with pytest.raises(KeyboardInterrupt), report_files.all_or_none():
        report_files.write_atomic(first, "new")
        report_files.write_atomic(second, "new")
        raise KeyboardInterrupt
    assert first.read_text() == "earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]
    with report_files.all_or_none():
        report_files.write_atomic(first, "new")
        assert first.read_text() == "earlier"  # in place only when the block ends
    assert first.read_text() == "new"


def test_a_failed_inner_set_of_reports_is_discarded_and_another_thread_s_writes_are_not_held(tmp_path):
    """One module-wide list held every thread's writes until the block ended, and an inner block that failed
    still had its files put in place by the outer one (QA)."""
    import threading

    outer, inner, other = tmp_path / "outer.json", tmp_path / "inner.json", tmp_path / "other.json"
    with report_files.all_or_none():
        report_files.write_atomic(outer, "outer")
        with pytest.raises(RuntimeError), report_files.all_or_none():
            report_files.write_atomic(inner, "inner")
            raise RuntimeError("the inner report failed")
        writer = threading.Thread(target=report_files.write_atomic, args=(other, "other"))
        writer.start()
        writer.join(timeout=10)
        assert other.read_text() == "other" and not outer.exists()
    assert outer.read_text() == "outer" and not inner.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json", "outer.json"]


def test_a_reader_that_stops_early_still_gets_the_other_report_files(run, tmp_path):
    html = tmp_path / "r.html"
    result = subprocess.run(
        f"{sys.executable} -m fedforensics.cli analyze {run} -q --json /dev/stdout --html {html} | true; "
        "echo status ${PIPESTATUS[0]}",
        shell=True, executable="/bin/bash", capture_output=True, text=True, timeout=300,
    )
    assert result.stdout == "status 141\n" and result.stderr == "" and html.read_text().rstrip().endswith("</html>")


def test_json_to_dev_stdout_redirected_into_a_file_is_appended_not_a_replacement(run, tmp_path):
    """`--json /dev/stdout >> log` renamed a fresh file onto the log: its earlier lines and the text
    report were lost."""
    log = tmp_path / "log.txt"
    log.write_text("earlier line\n")
    result = subprocess.run(
        f"{sys.executable} -m fedforensics.cli analyze {run} --json /dev/stdout >> {log}",
        shell=True, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "100"},
    )
    assert result.returncode == 0, result.stderr
    text = log.read_text()
    assert text.startswith("earlier line\n") and "verdicts" in text
    assert text.index("verdicts") < text.index('"format": "fedforensics-report"') < text.index("JSON report: /dev/stdout")


def test_a_report_named_by_a_loop_of_links_is_one_line(run, tmp_path):
    (tmp_path / "a.json").symlink_to(tmp_path / "b.json")
    (tmp_path / "b.json").symlink_to(tmp_path / "a.json")
    result = invoke("analyze", run, "--json", tmp_path / "a.json")
    one_line_error(result, "a.json is a loop of symbolic links")


def test_a_report_that_cannot_be_written_sends_nothing_into_a_pipe(run, tmp_path):
    """The JSON is written piece by piece into a file (renamed into place once whole), but into a pipe it
    goes whole or not at all: an extra the encoder refused left 15 kB of cut-off JSON for the reader."""
    import threading

    from fedforensics import open_run
    from fedforensics.analysis import analyze

    report = analyze(open_run(run))
    report.detectors[0].extras["kinds"] = {"a", "b"}  # a set: no JSON
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    with pytest.raises(TypeError, match="set is not JSON serializable"):
        report_json.write_json(report, fifo)
    with open(fifo, "wb"):  # the writer never opened it: let the reader see its end
        pass
    reader.join(timeout=10)
    assert received == [b""]


def test_only_the_report_s_own_tables_are_expanded_in_the_json(run, tmp_path):
    """The writer expanded any callable it met: a custom detector's extras {"kind": str} were written as ""."""
    from fedforensics import open_run
    from fedforensics.analysis import analyze

    report = analyze(open_run(run))
    report.detectors[0].extras["kind"] = str
    with pytest.raises(TypeError, match="type is not JSON serializable"):
        report_json.write_json(report, tmp_path / "report.json")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args",
    [
        ["analyze", "{run}", "--json", "{out}/"],
        ["analyze", "{run}", "--html", "{out}/"],
        ["inspect", "{run}", "--json", "{out}/"],
        ["evaluate", "{run}", "--json", "{out}/"],
        ["simulate", "{out}/", "--rounds", "2"],
        ["analyze", "{run}", "--json", ""],
    ],
)
def test_an_output_named_as_a_folder_or_not_named_is_refused_not_written_as_a_file(args, run, tmp_path):
    """`--json reports/` wrote a file named 'reports': the trailing slash said a folder was meant; `--json=` said "." is a directory."""
    out = tmp_path / "reports"
    result = command_line(*(a.format(run=run, out=out) for a in args))
    assert result.returncode == 2 and result.stdout == "", result
    message = "an empty name: give a file's name" if "" in args else "so it names a folder: give a file's name"
    assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
    assert not out.exists()


def test_a_folder_that_is_a_file_is_named_as_such(run, tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("")
    one_line_error(invoke("analyze", run, "--json", blocker / "r.json"), f"{blocker} is a file, not a folder")


@pytest.mark.parametrize(
    "args, message",
    [
        (["analyze"], "Missing argument 'RUN_FILE'"),
        (["analyze", "x.h5", "--fail-on", "bogus"], "Invalid value for '--fail-on'"),
        (["analyze", "x.h5", "--nope"], "No such option '--nope'"),
        (["demo", "--seed", "many"], "'many' is not a valid integer"),
        # it lacked the "(see: ... --help)" of the others: click raises it without the command's context
        (["analyze", "--json"], "Option '--json' requires an argument. (see: "),
        # click 8.4 and typer each suggested the name: "Did you mean 'analyze'? Did you mean 'analyze'?"
        (["analyse", "x.h5"], "No such command 'analyse'. Did you mean 'analyze'? (see: "),
    ],
)
def test_usage_errors_are_one_line_too(args, message):
    """click framed these in a five-line box; every other bad input is one line."""
    out = command_line(*args)
    assert out.returncode == 2 and out.stdout == "", out
    assert len(out.stderr.splitlines()) == 1 and message in out.stderr and "--help" in out.stderr, out.stderr
    assert out.stderr.count("Did you mean") <= 1, out.stderr


def test_help_paragraphs_reflow_and_analyze_examples_fit_80_columns():
    """QA: rich help kept the docstrings' source line breaks ("141 standard output was" alone on a line at 80
    columns), and the examples in the options' narrow column were cut ("fedforensics.zoo:digits…")."""
    for name in ("analyze", "evaluate", "demo", "simulate", "inspect"):
        lines = [line.strip() for line in command_line(name, "--help", columns=80).stdout.splitlines()]
        start = next(i for i, line in enumerate(lines) if line.startswith("Exit codes"))
        paragraph = lines[start : lines.index("", start)]
        assert "141 standard output was closed" in " ".join(paragraph), paragraph
        assert all(len(line) >= 60 for line in paragraph[:-1]), paragraph  # filled to the width, not broken early
    lines = command_line("analyze", "--help", columns=80).stdout.splitlines()
    examples = [i for i, line in enumerate(lines) if line.strip().startswith("fedforensics analyze run.h5")]
    assert len(examples) == 5 and all(not lines[i + 1].strip() or i + 1 in examples for i in examples), lines
    assert "…" not in "".join(lines)


@pytest.mark.parametrize("name", ["inspect", "evaluate"])
def test_the_examples_of_inspect_and_evaluate_help_run_as_printed(tmp_path, name):
    """A fresh-eyes reader found examples in the help of analyze and of the bare command, none in inspect's and
    evaluate's: each now shows some, and each runs as printed in a folder holding a run and a truth file."""
    make_run(tmp_path / "run.h5", rounds=4, attackers=("c0",), attack="boost")
    (tmp_path / "truth.txt").write_text("c0\n")
    lines = command_line(name, "--help", columns=120).stdout.splitlines()
    examples = [line.split("#")[0].strip() for line in lines if line.strip().startswith(f"fedforensics {name} ")]
    assert len(examples) >= 3, lines
    for example in examples:
        words = example.replace("fedforensics", f"{sys.executable} -m fedforensics.cli", 1)
        out = subprocess.run(words, shell=True, cwd=tmp_path, capture_output=True, text=True)
        assert out.returncode == 0, (example, out.stderr)
    assert json.loads((tmp_path / ("summary.json" if name == "inspect" else "evaluation.json")).read_text())


def test_python_m_fedforensics_is_the_command_line():
    """QA: `python3 -m fedforensics` failed with "No module named fedforensics.__main__"."""
    out = subprocess.run([sys.executable, "-m", "fedforensics", "inspect", "missing.h5"], capture_output=True, text=True)
    assert out.returncode == 2 and out.stderr.strip() == "error: missing.h5: no such file", out


def test_h_is_help_and_the_bare_command_prints_it_once_with_examples_that_fit_80_columns():
    out = command_line("analyze", "-h")
    assert out.returncode == 0 and "Audit a run" in out.stdout
    bare = command_line(columns=80)
    assert bare.returncode == 0 and bare.stdout.count("Usage:") == 1 and bare.stderr == "", bare
    examples = [line.split("#")[0].split() for line in bare.stdout.splitlines() if line.strip().startswith("fedforensics ")]
    commands = {"analyze", "demo", "evaluate", "inspect", "simulate"}
    assert len(examples) >= 4 and all(words[1] in commands for words in examples), examples
    # each example with its comment on one line: rich wrapped the comments of a first draft
    assert all("#" in line for line in bare.stdout.splitlines() if line.strip().startswith("fedforensics ")), bare.stdout


def test_an_interrupted_demo_leaves_no_reports_of_an_earlier_one(tmp_path, monkeypatch):
    """Stopped mid-simulation, `demo` left the new run.h5 beside an earlier seed's reports."""
    import fedforensics.simulate

    out = tmp_path / "demo"
    _earlier_run(out / "run.h5", "fedforensics demo")
    for name in ("report.json", "report.html", "notes.txt"):
        (out / name).write_text("from an earlier demo")
    monkeypatch.setattr(fedforensics.simulate, "simulate", refuse(KeyboardInterrupt()))
    result = invoke("demo", "--out", out, "--no-inversion")
    assert result.exit_code == 130
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]  # the demo's own files only


def _earlier_run(path, source):
    """A run file whose meta says ``source`` wrote it."""
    path.parent.mkdir(exist_ok=True)
    with Recorder(path, meta={"source": source}) as rec, rec.round(0, {"w": np.zeros(2, np.float32)}) as rnd:
        rnd.client("c0", {"w": np.ones(2, np.float32)}, num_samples=1)


@pytest.mark.parametrize("source", ["my own federation", "fedforensics simulate", None])
def test_demo_replaces_only_an_earlier_demos_files_unless_told(tmp_path, monkeypatch, source):
    """`demo --out .` deleted a user's own run.h5 and report.json, which the README names its files too."""
    import fedforensics.simulate

    out = tmp_path / "project"
    if source is None:  # no run at all, a report of the user's
        out.mkdir()
    else:
        _earlier_run(out / "run.h5", source)
    (out / "report.json").write_text("the user's")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(fedforensics.simulate, "simulate", refuse(AssertionError("simulated before checking")))
    named = "run.h5, report.json" if source is not None else "report.json"
    one_line_error(invoke("demo", "--out", out), f"--out {out} holds {named}, which no earlier demo wrote there")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    monkeypatch.setattr(fedforensics.simulate, "simulate", refuse(KeyboardInterrupt()))
    assert invoke("demo", "--out", out, "--overwrite").exit_code == 130  # told to: replaced
    assert list(out.iterdir()) == []


def test_demo_names_every_file_it_writes(tmp_path, monkeypatch):
    """QA: the demo wrote trigger.npz beside the run and the reports without saying so."""
    import fedforensics.simulate
    from fedforensics.analysis import analyze
    from fedforensics.cli import demo
    from fedforensics.run import open_run
    from fedforensics.simulate.federation import SimulationResult

    def simulate(config, path, **kwargs):  # a small run in place of a minute of training
        make_run(path, attackers=("c3",), attack="boost")
        return SimulationResult(path, ["c3"], 0.9, 0.8)

    monkeypatch.setattr(fedforensics.simulate, "simulate", simulate)
    monkeypatch.setattr(demo, "run_audit", lambda path, options, progress: analyze(open_run(path)))
    out = tmp_path / "demo"
    result = invoke("demo", "--out", out)
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(demo.DEMO_FILES)
    told = "".join(result.output.split())  # a long path folds at the terminal's width
    assert all(str(out / name) in told for name in written), result.output


def test_demo_refuses_an_empty_folder_name():
    result = invoke("demo", "--out", "")
    assert result.exit_code == 2 and "an empty name: give a folder's name" in result.output


def test_demo_refuses_an_unwritable_report_before_simulating(tmp_path, monkeypatch):
    import fedforensics.simulate

    (tmp_path / "demo" / "report.json").mkdir(parents=True)
    monkeypatch.setattr(fedforensics.simulate, "simulate", refuse(AssertionError("simulated before checking")))
    one_line_error(invoke("demo", "--out", tmp_path / "demo"), "report.json is a directory")


def test_sigterm_stops_a_command_as_ctrl_c_does(tmp_path):
    """`timeout -s TERM` during the HTML rendering left a hidden .r.json.XXXX.tmp behind: SIGTERM killed the process
    where Ctrl-C raised KeyboardInterrupt and let the reports' clean-up run. Now it raises too: exit 143, no file."""
    import signal

    from fedforensics.cli.app import user_errors

    def pieces():
        yield "{"
        os.kill(os.getpid(), signal.SIGTERM)  # delivered while the report is being written
        yield "}"

    @user_errors
    def command() -> None:
        report_files.write_atomic(tmp_path / "r.json", pieces())

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(SystemExit) as stop:
        command()
    assert stop.value.code == 143 and list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is before


def test_only_corroborating_detectors_are_said_to_judge_nobody(tmp_path):
    """`-d output-bias -d client-metrics --fail-on suspicious` exited 0 on a sybil run whose clients output-bias
    flagged at z +14.7: such flags never make a client suspicious alone, and nothing said so. `--fail-on malicious`
    can never fire with them; `--fail-on suspicious` still can, on an update holding NaN/Inf."""
    path = make_run(tmp_path / "run.h5", attackers=("c2",), attack="boost", rounds=5)
    one_line_error(
        invoke("analyze", path, "-d", "output-bias", "-d", "client-metrics", "--fail-on", "malicious"),
        "--fail-on malicious can never fire with only corroborating detectors (output-bias, client-metrics)",
    )
    # a NaN/Inf update still makes a client suspicious: that gate can fire (a review), and is not refused
    assert invoke("analyze", path, "-d", "output-bias", "--fail-on", "suspicious").exit_code == 0
    result = invoke("analyze", path, "-d", "output-bias", "--json", tmp_path / "r.json")
    assert result.exit_code == 0
    notes = json.loads((tmp_path / "r.json").read_text())["notes"]
    assert any(n.startswith("only corroborating detectors were run (output-bias): ") for n in notes), notes
    assert invoke("analyze", path, "-d", "output-bias", "-d", "norm", "--fail-on", "suspicious").exit_code in (0, 1)


def test_a_nan_update_fails_the_gate_whatever_detectors_run(tmp_path):
    path = tmp_path / "nan.h5"
    with Recorder(path) as rec:
        for r in range(3):
            with rec.round(r, {"w": np.zeros(4, np.float32)}) as rnd:
                for i in range(5):
                    rnd.client(f"c{i}", {"w": np.full(4, np.nan if (r, i) == (1, 4) else float(i))}, num_samples=1, delta=True)
    result = invoke("analyze", path, "-d", "client-metrics", "--fail-on", "suspicious", "--quiet")
    # QA: exit 1 said nothing, with -q nothing at all: a CI log showed a failed job without a reason
    assert result.exit_code == 1 and result.stderr == "--fail-on suspicious: 1 client reached it (c4)\n", result.stderr


def test_what_hdf5_raises_past_the_checks_is_a_damaged_file_and_a_defect_of_ours_exit_3(tmp_path, capsys, monkeypatch):
    """QA: one flipped byte of a run's metadata raised RuntimeError from h5py where the ground truth was first read
    (past the checks on opening): a traceback and exit 1, the code of `--fail-on`. What HDF5 raises is a damaged
    file (exit 2, one line); an error of fedforensics' own code is a defect: one line, exit 3, apart from 1; a
    meta nested thousands deep is bad input (RecursionError)."""
    import h5py

    from fedforensics.cli.app import EXIT_INTERNAL_ERROR, user_errors

    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_group("g")

    @user_errors
    def damaged() -> None:
        with h5py.File(path, "r") as f:
            f["g"].id.links.get_val(b"missing")  # HDF5 itself raises (KeyError from h5py's compiled code)

    with pytest.raises(typer_exit()) as stop:
        damaged()
    assert stop.value.exit_code == 2
    assert capsys.readouterr().err.strip().startswith("error: damaged run file (")

    @user_errors
    def misuse() -> None:  # a call of ours h5py refuses (an unsorted index) is no damaged file
        with h5py.File(path, "a") as f:
            f["d"] = np.arange(5)
            f["d"][[3, 1]]

    with pytest.raises(SystemExit) as stop:
        misuse()
    assert stop.value.code == 3
    assert capsys.readouterr().err.startswith("internal error: TypeError")

    @user_errors
    def defect() -> None:
        raise ValueError("an index went astray\nsecond line")

    with pytest.raises(SystemExit) as stop:
        defect()
    assert stop.value.code == EXIT_INTERNAL_ERROR == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("internal error: ValueError: an index went astray — a defect of fedforensics") and "\n" not in err
    monkeypatch.setenv("FEDFORENSICS_TRACEBACK", "1")
    with pytest.raises(ValueError):
        defect()

    @user_errors
    def deep() -> None:
        raise RecursionError("maximum recursion depth exceeded")

    with pytest.raises(typer_exit()) as stop:
        deep()
    assert stop.value.exit_code == 2


def typer_exit() -> type:
    import typer

    return typer.Exit


def test_a_model_factory_that_exits_is_an_error_not_the_end_of_the_audit(tmp_path, monkeypatch):
    """QA: a --model factory (or its module) calling sys.exit(0) ended `analyze` with exit 0, nothing written, and
    --fail-on bypassed."""
    pytest.importorskip("torch")
    from fedforensics.errors import FedForensicsError
    from fedforensics.inversion.inputs import build_model, load_model_factory

    (tmp_path / "exits_on_import.py").write_text("import sys\nsys.exit(0)\n")
    (tmp_path / "exits_when_called.py").write_text("import sys\ndef model():\n    sys.exit(3)\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FedForensicsError, match=r"importing exits_on_import failed \(sys.exit\(0\)\)"):
        load_model_factory("exits_on_import:model")
    with pytest.raises(FedForensicsError, match=r"the model factory failed: sys.exit\(3\)"):
        build_model(load_model_factory("exits_when_called:model"))


@pytest.mark.parametrize("option", ["--json", "--html"])
def test_a_rewritten_report_keeps_its_mode_and_a_new_one_follows_the_umask(run, tmp_path, option):
    """QA: a report kept private (0600) became world-readable (0644) when an audit rewrote it."""
    private, new = tmp_path / "private.out", tmp_path / "new.out"
    private.write_text("old\n")
    private.chmod(0o600)
    assert invoke("analyze", run, "-q", option, private).exit_code == 0
    assert invoke("analyze", run, "-q", option, new).exit_code == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600 and private.read_text() != "old\n"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o666 & ~umask


def test_ctrl_c_while_the_command_line_loads_is_interrupted_not_a_traceback():
    """QA: Ctrl-C in the first 0.3 s (numpy, h5py, rich loading) printed a 12-line KeyboardInterrupt traceback."""
    script = textwrap.dedent("""
        import sys

        class Interrupt:  # Ctrl-C arriving while h5py is imported
            def find_spec(self, name, path=None, target=None):
                if name == "h5py":
                    raise KeyboardInterrupt
                return None

        sys.meta_path.insert(0, Interrupt())
        from fedforensics.cli import main
        main()
    """)
    result = subprocess.run([sys.executable, "-c", script, "analyze", "x.h5"], capture_output=True, text=True)
    assert result.returncode == 130 and result.stderr == "interrupted\n", result


def test_ctrl_c_while_typer_builds_the_command_is_interrupted_not_a_traceback(monkeypatch, capsys):
    """Ctrl-C 0.7 s in (typer reading the commands' type hints, before a command's own handling) printed a
    traceback and ended the process by SIGINT (status -2)."""
    import typer.main

    from fedforensics.cli import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(typer.main, "get_command", interrupted)
    monkeypatch.setattr(sys, "argv", ["fedforensics", "inspect", "x.h5"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 130 and capsys.readouterr().err == "interrupted\n"


def test_ctrl_c_wrapped_in_a_runtime_error_while_the_command_line_loads_is_interrupted():
    """A real SIGINT inside rich's dataclass creation: Python 3.11 wraps the KeyboardInterrupt in a RuntimeError
    from __set_name__, which printed a traceback and exited 1, the code --fail-on gives a finding (QA)."""
    script = textwrap.dedent("""
        import dataclasses, os, signal, sys
        # Python's own handler, whatever the runner left: an ignored SIGINT is inherited by a child process, and then
        # the signal below never arrived (a suite started as a background job of a shell without job control, as a
        # fresh-clone CI of session 32 was: such a shell starts it with SIGINT ignored)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        original = dataclasses.Field.__set_name__
        fired = []

        def set_name(self, owner, name):
            if not fired and owner.__module__ == "rich.table":
                fired.append(True)
                os.kill(os.getpid(), signal.SIGINT)  # the handler runs inside __set_name__
                for _ in range(10):
                    pass
            return original(self, owner, name)

        dataclasses.Field.__set_name__ = set_name
        sys.argv = ["fedforensics", "analyze", "x.h5", "--fail-on", "malicious"]
        from fedforensics.cli import main
        main()
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 130 and result.stderr == "interrupted\n", result


@pytest.fixture
def default_sigint():
    """Python's own SIGINT handler for the test (a test runner may have set its own), restored afterwards."""
    import signal

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_python_drops_where_it_lands_still_stops_the_audit_and_writes_nothing(run, tmp_path, monkeypatch, default_sigint):
    """A SIGINT landing in a weak reference's callback (h5py opens datasets under them) is printed as "Exception
    ignored" and dropped: the audit went on, wrote both reports and exited 0 in 5 of 40 QA tries."""
    import gc
    import signal

    from fedforensics import interrupts, scan

    matrix = scan.RoundGram.matrix

    class LandsInDel:
        def __del__(self) -> None:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # the handler in place, as SIGINT arriving here runs it

    def dropped(self: scan.RoundGram) -> np.ndarray:
        LandsInDel()  # collected at once: its KeyboardInterrupt is printed and dropped
        gc.collect()
        return matrix(self)

    monkeypatch.setattr(scan.RoundGram, "matrix", dropped)
    unraisable: list[object] = []  # Python printed the dropped interrupt's traceback above the one line
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    report = tmp_path / "r.json"
    result = invoke("analyze", run, "--json", report)
    assert result.exit_code == 130 and result.stderr == "interrupted\n" and unraisable == [], result.output
    assert not report.exists() and list(tmp_path.iterdir()) == []
    # the scope ended with the command: Python's handler is back and the signal forgotten (review: the record stuck,
    # and every later command of the process exited 130, every later all_or_none raised)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and interrupts.stopped_by() is None
    monkeypatch.setattr(scan.RoundGram, "matrix", matrix)
    assert invoke("analyze", run, "--json", report).exit_code == 0 and report.exists()


def test_a_host_s_own_sigint_handler_is_left_alone(run, monkeypatch):
    """A program that imports fedforensics and handles Ctrl-C itself keeps its handler during a command (checked
    inside it: after it, any handler swapped in is back already; review)."""
    import signal

    import importlib

    app_module = importlib.import_module("fedforensics.cli.app")  # the module (the package exports its Typer app)
    during: list[object] = []
    monkeypatch.setattr(app_module, "raise_if_interrupted", lambda: during.append(signal.getsignal(signal.SIGINT)))

    def host(signum: int, frame: object) -> None:
        raise AssertionError("not sent")

    previous = signal.signal(signal.SIGINT, host)
    try:
        assert invoke("inspect", run).exit_code == 0
        assert during == [host] and signal.getsignal(signal.SIGINT) is host
    finally:
        signal.signal(signal.SIGINT, previous)


def test_a_sigterm_python_drops_where_it_lands_still_stops_the_audit(run, tmp_path, monkeypatch):
    """Review: a SIGTERM whose exception Python dropped (a weak reference's callback) let analyze write its report and
    exit 0, where the same with SIGINT gave 130 and no report."""
    import gc
    import signal

    from fedforensics import scan

    matrix = scan.RoundGram.matrix

    class LandsInDel:
        def __del__(self) -> None:
            signal.getsignal(signal.SIGTERM)(signal.SIGTERM, None)  # the handler in place, its exception dropped

    def dropped(self: scan.RoundGram) -> np.ndarray:
        LandsInDel()
        gc.collect()
        return matrix(self)

    monkeypatch.setattr(scan.RoundGram, "matrix", dropped)
    before = signal.getsignal(signal.SIGTERM)
    report = tmp_path / "r.json"
    result = invoke("analyze", run, "--json", report)
    assert result.exit_code == 143 and result.stderr == "terminated\n", result.output
    assert not report.exists() and signal.getsignal(signal.SIGTERM) is before


def test_a_dropped_ctrl_c_puts_no_report_in_place(tmp_path, default_sigint):
    import signal

    from fedforensics.interrupts import recording_interrupts

    with recording_interrupts():
        with pytest.raises(KeyboardInterrupt), report_files.all_or_none():
            report_files.write_atomic(tmp_path / "a.json", "new")
            try:  # as SIGINT landing where Python drops the exception leaves the handler's record
                signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
            except KeyboardInterrupt:
                pass
        assert list(tmp_path.iterdir()) == []
    with report_files.all_or_none():  # outside the scope, nothing remembered
        report_files.write_atomic(tmp_path / "a.json", "new")
    assert (tmp_path / "a.json").read_text() == "new"


def test_writing_the_reports_shows_a_spinner_on_a_terminal_only(monkeypatch):
    """QA: a fleet's HTML report took 14 s after the terminal report with nothing on the screen."""
    import io

    from rich.console import Console
    from rich.status import Status

    from fedforensics.cli import progress

    screen = io.StringIO()
    monkeypatch.setattr(progress, "err_console", Console(file=screen, force_terminal=True, width=80))
    with progress.writing([Path("r.json"), None, Path("r.html")]) as status:
        assert isinstance(status, Status)
    assert "writing r.json, r.html" in screen.getvalue()
    assert not isinstance(progress.writing([None, None]), Status)
    assert not isinstance(progress.writing([Path("r.json"), Path("/dev/stdout")]), Status)  # written meanwhile (review)
    monkeypatch.setattr(progress, "err_console", Console(file=io.StringIO(), force_terminal=False))
    assert not isinstance(progress.writing([Path("r.json")]), Status)  # piped: no spinner left behind


def test_the_bar_says_the_work_after_the_last_round_is_still_going(monkeypatch):
    """QA: the bar sat full at 4/4 for 8 s while a fleet's detectors concluded, as if done."""
    import io

    from rich.console import Console

    from fedforensics.cli import progress

    screen = io.StringIO()
    monkeypatch.setattr(progress, "err_console", Console(file=screen, force_terminal=True, width=100))
    with progress.progress_bar("scanning rounds") as update:
        update(1, 2)
        assert "(finishing)" not in screen.getvalue()
        update(2, 2)
    assert "scanning rounds (finishing)" in screen.getvalue()


def test_sigterm_while_the_command_line_loads_or_before_the_command_is_terminated_not_a_traceback():
    """Review: SIGTERM during the imports, or before a command's own handling, raised an unhandled Terminated: a
    traceback and exit 1, where the default action had killed the process with 143."""
    loading = textwrap.dedent("""
        import os, signal, sys

        class Term:  # SIGTERM arriving while h5py is imported
            def find_spec(self, name, path=None, target=None):
                if name == "h5py":
                    os.kill(os.getpid(), signal.SIGTERM)
                    for _ in range(10):
                        pass
                return None

        sys.meta_path.insert(0, Term())
        from fedforensics.cli import main
        main()
    """)
    result = subprocess.run([sys.executable, "-c", loading, "inspect", "x.h5"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 143 and result.stderr == "terminated\n", result
    building = textwrap.dedent("""
        import os, signal, sys
        import typer.main
        from fedforensics.cli import main

        def get_command(*args, **kwargs):  # SIGTERM while typer builds the command, before the command's handling
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10):
                pass

        typer.main.get_command = get_command
        sys.argv = ["fedforensics", "inspect", "x.h5"]
        main()
    """)
    result = subprocess.run([sys.executable, "-c", building], capture_output=True, text=True, timeout=120)
    assert result.returncode == 143 and result.stderr == "terminated\n", result


def test_a_host_s_own_sigterm_handler_is_kept_and_a_signal_while_the_scope_ends_leaves_nothing_behind():
    """Review: importing fedforensics.cli replaced a host program's SIGTERM handler; a Ctrl-C landing while the
    scope restored the handlers left ours installed and the record set, for every later command to stop on."""
    import signal

    from fedforensics import interrupts

    def host(signum: int, frame: object) -> None:
        raise AssertionError("not sent")

    restore, hook = signal.signal, sys.unraisablehook
    before_int, before_term = signal.signal(signal.SIGINT, signal.default_int_handler), signal.signal(signal.SIGTERM, host)
    try:
        with interrupts.recording_interrupts():
            assert signal.getsignal(signal.SIGTERM) is host and signal.getsignal(signal.SIGINT) is interrupts._record_and_raise
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        calls: list[int] = []

        def landing(signum: int, handler: object) -> object:  # Ctrl-C lands during the first restore
            calls.append(signum)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return restore(signum, handler)  # type: ignore[arg-type]

        with pytest.raises(KeyboardInterrupt):
            with interrupts.recording_interrupts():
                signal.signal = landing  # type: ignore[assignment]
        signal.signal = restore
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler and interrupts.stopped_by() is None
        assert not interrupts._active and sys.unraisablehook is hook and len(calls) >= 2  # restored after it landed
    finally:
        signal.signal = restore
        signal.signal(signal.SIGINT, before_int)
        signal.signal(signal.SIGTERM, before_term)


def test_a_progress_bar_estimates_the_time_left(monkeypatch):
    """A fresh-eyes user: a five-minute inversion showed '5893/6000 0:00:10', time spent and no estimate."""
    import io

    from rich.console import Console

    from fedforensics.cli import progress

    screen = io.StringIO()
    monkeypatch.setattr(progress, "err_console", Console(file=screen, force_terminal=True, width=120))
    with progress.progress_bar("trigger inversion (search epochs)") as update:
        update(30, 100)
        update(60, 100)
    shown = screen.getvalue()
    assert "trigger inversion (search epochs)" in shown and "left" in shown and "60/100" in shown


def test_a_run_of_no_round_is_told_in_its_note_without_empty_tables(tmp_path):
    """A researcher's writer killed in round 0 left a run of no rounds: the terminal said 'nothing to audit', then
    printed an empty verdict table and thirteen detectors 'not applicable'."""
    Recorder(tmp_path / "empty.h5").close()
    result = invoke("analyze", tmp_path / "empty.h5")
    assert result.exit_code == 0, result.output
    assert "holds no rounds: there is nothing to audit" in result.output
    assert "verdicts" not in result.output and "not applicable" not in result.output, result.output


def test_the_command_without_the_analyzers_dependencies_says_so_in_one_line():
    """A recorder-only install (numpy, h5py, the package --no-deps) printed a traceback for rich when the fedforensics
    command was run there (a fresh-eyes user): it now says which dependency is missing and how to install, exit 2."""
    script = "import sys; sys.modules['rich'] = None; from fedforensics.cli import main; main()"
    result = subprocess.run([sys.executable, "-c", script, "analyze", "x.h5"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: the fedforensics command needs the analyzer's dependencies, and 'rich' is not installed (a recorder-only "
        "install?): install the package without --no-deps, as the README says"
    ]
