"""``mbd tasks``: list the registered tasks, one line each."""

from __future__ import annotations

from mbd.cli.common import CLIError, fail
from mbd.tasks import list_tasks

SUMMARY = "list the tasks that `mbd plan` and `mbd mpc` know"


def run(argv: list[str]) -> int:
    """Entry point of ``mbd tasks``; returns the exit code."""
    if argv and argv[0] in ("-h", "--help"):
        print("usage: mbd tasks\n\nLists every task with its horizon and a one-line summary.")
        return 0
    if argv:
        return fail("mbd tasks", CLIError(argv[0], "mbd tasks takes no arguments"))
    for t in list_tasks():
        demo = " [--demo]" if t.has_demo else ""
        engine = f" [--engine {'|'.join(t.engines)}]" if t.engines else ""
        backend = f" [--backend {'|'.join(t.backends)}]" if t.backends else ""
        print(f"{t.name:<18} H={t.horizon:<4} {t.summary}{demo}{engine}{backend}")
    return 0
