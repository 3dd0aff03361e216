"""``mbd report DIR``: the tables and curves of a sweep (paper Tables 2 and 3).

Reads ``DIR/runs.jsonl`` and writes ``DIR/table.md`` (reward mean ± std over seeds per task
and method; time per run with compile time apart; for the paper's tasks, the paper's
Table 2 beside them), ``DIR/table.csv`` (the same numbers,
one row per task and method) and ``DIR/curves.png`` (mean sample reward per iteration,
every method, one panel per task). Each file is replaced atomically.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from mbd.cli.common import CLIError, fail

SUMMARY = "tables (table.md, table.csv) and curves.png of a bench folder"
USAGE = "usage: mbd report DIR [--quiet]   (DIR: a folder written by mbd bench)"


def _replace(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it 0600; give it a normal file's mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def parse(argv: list[str]) -> tuple[Path, bool]:
    """Parses ``DIR [--quiet]``; raises :class:`CLIError`."""
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        raise SystemExit(0)
    quiet = "--quiet" in argv
    rest = [a for a in argv if a != "--quiet"]
    bad = [a for a in rest if a.startswith("-")]
    if bad:
        raise CLIError(bad[0], "unknown option; " + USAGE)
    if len(rest) != 1:
        raise CLIError("DIR", "give exactly one bench folder; " + USAGE)
    d = Path(rest[0])
    if not (d / "runs.jsonl").is_file():
        raise CLIError("DIR", f"{d} has no runs.jsonl (run `mbd bench --out {d}` first)")
    return d, quiet


def run(argv: list[str]) -> int:
    """Entry point of ``mbd report``; returns the exit code."""
    try:
        d, quiet = parse(argv)
    except CLIError as e:
        return fail("mbd report", e)
    from mbd.bench import load_runs, plot_curves, summarize, table_csv, table_markdown

    runs = load_runs(d / "runs.jsonl")
    if not runs:
        return fail("mbd report", CLIError("DIR", f"{d / 'runs.jsonl'} holds no finished run"))
    rows = summarize(runs)
    from mbd.tasks.robots import PAPER_MBD_SECONDS, PAPER_RESULTS

    md = table_markdown(rows, PAPER_RESULTS, PAPER_MBD_SECONDS)
    _replace(d / "table.md", lambda p: p.write_text(md))
    _replace(d / "table.csv", lambda p: p.write_text(table_csv(rows)))
    _replace(d / "curves.png", lambda p: plot_curves(runs, p))
    if not quiet:
        print(md, end="")
    print(f"mbd report: {len(runs)} runs -> {d}/table.md, table.csv, curves.png", file=sys.stderr)
    return 0
