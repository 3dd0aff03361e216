"""Shared pieces of the command line: one-line errors, atomic output folders, versions."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_PARTIAL: set[Path] = set()  # temporary output folders to remove if interrupted


def install_interrupt_handler(prog: str) -> None:
    """Ctrl-C prints one line and exits 130 at once, leaving nothing half-written.

    The process ends with ``os._exit`` rather than a ``KeyboardInterrupt``: unwinding
    through an XLA compile that is still running on other threads can crash the
    interpreter. Temporary output folders of :func:`atomic_out_dir` are removed first.

    Args:
        prog: the command's name for the message, e.g. ``mbd plan``.
    """
    import signal

    def handler(signum, frame):
        del signum, frame
        for d in list(_PARTIAL):
            shutil.rmtree(d, ignore_errors=True)
        with contextlib.suppress(OSError):
            os.write(2, f"{prog}: interrupted\n".encode())
        os._exit(EXIT_INTERRUPTED)

    with contextlib.suppress(ValueError):  # only the main thread can set handlers
        signal.signal(signal.SIGINT, handler)


class CLIError(Exception):
    """A bad option value: printed as one line, exit code 2.

    Attributes:
        option: the option as typed, e.g. ``--temperature`` (or a positional's name).
        message: what is wrong and the valid range.
    """

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")
        self.option = option
        self.message = message


def flag(field: str) -> str:
    """Command-line spelling of a config field: ``num_samples`` -> ``--num-samples``."""
    return "--" + field.replace("_", "-")


def leading_name(
    argv: list[str],
    what: str,
    missing: str,
    usage: Callable[[], str],
    lookup: Callable[[str], Any],
) -> tuple[str, Any, list[str]]:
    """Takes the NAME of ``mbd COMMAND NAME [options]`` and looks it up.

    ``-h`` / ``--help`` in NAME's place prints ``usage()`` and exits 0.

    Args:
        argv: the command's arguments.
        what: the positional's label in errors, e.g. ``TASK``.
        missing: the message when NAME is absent.
        usage: returns the usage text.
        lookup: ``lookup(name)``, raising KeyError with a message for an unknown name.

    Returns:
        (name, what ``lookup`` returned, the remaining arguments).

    Raises:
        CLIError: NAME missing or unknown.
    """
    if not argv or argv[0].startswith("-"):
        if argv and argv[0] in ("-h", "--help"):
            print(usage())
            raise SystemExit(0)
        raise CLIError(what, missing)
    try:
        found = lookup(argv[0])
    except KeyError as e:
        raise CLIError(what, str(e.args[0])) from None
    return argv[0], found, argv[1:]


def check_task_options(
    task: Any, seed: int, horizon: int, knots: int | None, demo: bool, backend: str | None
) -> None:
    """The checks ``mbd plan`` and ``mbd mpc`` share on a task's options.

    Raises:
        CLIError: naming the option: a negative seed, knots outside [1, horizon], a demo
            the task does not have, a backend it does not support.
    """
    name = task.name
    if horizon < 1:
        raise CLIError("--horizon", f"must be an integer >= 1 (got {horizon})")
    if seed < 0:
        raise CLIError("--seed", f"must be an integer >= 0 (got {seed})")
    if knots is not None and not 1 <= knots <= horizon:
        raise CLIError("--knots", f"must be in [1, horizon = {horizon}] (got {knots})")
    if demo and not task.has_demo:
        raise CLIError("--demo", f"task {name!r} has no demonstration")
    if backend is not None:
        if not task.backends:
            raise CLIError("--backend", f"task {name!r} has a single built-in simulator")
        if backend not in task.backends:
            raise CLIError(
                "--backend", f"task {name!r} supports {', '.join(task.backends)} (got {backend!r})"
            )


def fail(prog: str, err: Exception) -> int:
    """Prints ``prog: error: ...`` on one line to stderr and returns exit code 2."""
    text = " ".join(str(err).split())
    print(f"{prog}: error: {text}", file=sys.stderr)
    return EXIT_USAGE


def check_out_dir(path: Path) -> Path:
    """Checks that an output folder can be created and written, and leaves no trace.

    Missing folders are created to write a probe file, then removed again.

    Args:
        path: the folder (it may exist already, then it must be a writable folder).

    Returns:
        The absolute path.

    Raises:
        CLIError: naming ``--out`` when the folder cannot be created or written.
    """
    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise CLIError("--out", f"{path} exists and is not a folder")
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as e:
        raise CLIError("--out", f"cannot write to {path} ({e.strerror or e})") from None
    finally:
        for d in missing:  # deepest first
            with contextlib.suppress(OSError):
                d.rmdir()
    return path


@contextmanager
def atomic_out_dir(path: Path) -> Iterator[Path]:
    """Yields a temporary folder; on success its files are moved into ``path``.

    Nothing is half-written: if the block raises, the temporary folder is removed and
    ``path`` is left as it was.

    Args:
        path: the final output folder (created with its parents if missing).

    Yields:
        The temporary folder to write into.
    """
    path = check_out_dir(path)
    path.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.partial-", dir=path.parent))
    _PARTIAL.add(tmp)
    try:
        yield tmp
        for item in sorted(tmp.iterdir()):
            dest = path / item.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(item, dest)
    finally:
        _PARTIAL.discard(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def tyro_parse(cls: Any, default: Any, args: list[str], prog: str, description: str) -> Any:
    """Parses options with tyro; its errors become one :class:`CLIError` line.

    ``--help`` prints tyro's help and exits 0 as usual.

    Raises:
        CLIError: for an option tyro rejects (unknown option, bad type, bad choice).
    """
    import io
    import re
    from contextlib import redirect_stderr, redirect_stdout

    import tyro

    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            return tyro.cli(cls, default=default, args=args, prog=prog, description=description)
    except SystemExit as e:
        if not e.code:
            sys.stdout.write(out.getvalue())
            raise
        text = re.sub(r"[\u2500-\u257f]|-{3,}", " ", err.getvalue() + out.getvalue())
        text = text.split("Argument helptext:")[0]
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        lines = [ln for ln in lines if not ln.startswith("For full helptext")]
        if len(lines) > 1:  # tyro's box title ("Invalid choice") repeats its message
            lines = lines[1:]
        msg = " ".join(" ".join(lines).split())
        opt = next((a for a in args if a.startswith("--") and a.split("=")[0] in msg), "options")
        raise CLIError(opt.split("=")[0], _plain(msg) or "could not parse the options") from None


def _plain(msg: str) -> str:
    """tyro's parse errors in the words of the other errors: what is valid, what was got."""
    import re

    m = re.search(r"invalid choice '(.*)' for argument '[^']*'\. Expected one of \((.*)\)", msg)
    if m:
        choices = ", ".join(c.strip(" '") for c in m.group(2).split(","))
        return f"must be one of {choices} (got {m.group(1)!r})"
    m = re.search(r"invalid literal for int\(\) with base 10: '(.*)'", msg)
    if m:
        return f"must be an integer (got {m.group(1)!r})"
    m = re.search(r"could not convert string to float: '(.*)'", msg)
    if m:
        return f"must be a number (got {m.group(1)!r})"
    return msg


def versions() -> dict[str, str]:
    """Versions of mbd, JAX, jaxlib, NumPy and Python, and the JAX backend."""
    import jax
    import jaxlib
    import numpy as np

    import mbd

    return {
        "mbd": mbd.__version__,
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
    }


def write_json(path: Path, data: Any) -> None:
    """Writes JSON with two-space indentation (NaN and inf written as null)."""
    from mbd.bench import json_safe

    Path(path).write_text(json.dumps(json_safe(data), indent=2) + "\n")
