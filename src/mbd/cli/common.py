"""Shared pieces of the command line: one-line errors, atomic output folders, versions."""

from __future__ import annotations

import contextlib
import dataclasses
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


MAX_SEED = 2**63 - 1
"""The largest seed: JAX makes a key from a signed 64-bit integer."""


def check_seed(seed: int, option: str = "--seed") -> None:
    """Refuses a seed JAX cannot make a key from.

    Raises:
        CLIError: naming ``option`` for a seed outside [0, 2**63 - 1].
    """
    if not 0 <= seed <= MAX_SEED:
        raise CLIError(option, f"must be an integer in [0, 2**63 - 1] (got {seed})")


def check_task_options(
    task: Any,
    seed: int,
    horizon: int,
    knots: int | None,
    backend: str | None,
    engine: str | None = None,
) -> None:
    """The checks ``mbd plan`` and ``mbd mpc`` share on a task's options (options a task
    has no use for are refused before, by :func:`refuse_absent`).

    Raises:
        CLIError: naming the option: a horizon < 1, a seed outside [0, 2**63 - 1],
            knots outside [1, horizon], a backend or engine the task does not support,
            a Brax backend with a MuJoCo engine.
    """
    if horizon < 1:
        raise CLIError("--horizon", f"must be an integer >= 1 (got {horizon})")
    check_seed(seed)
    if knots is not None and not 1 <= knots <= horizon:
        raise CLIError("--knots", f"must be in [1, horizon = {horizon}] (got {knots})")
    if backend is not None and backend not in task.backends:
        raise CLIError(
            "--backend",
            f"task {task.name!r} supports {', '.join(task.backends)} (got {backend!r})",
        )
    if engine is not None and engine not in task.engines:
        raise CLIError(
            "--engine", f"task {task.name!r} supports {', '.join(task.engines)} (got {engine!r})"
        )
    if engine not in (None, "auto", "brax") and backend is not None:
        raise CLIError(
            "--backend",
            f"selects a Brax pipeline, which runs on --engine brax (got --engine {engine})",
        )


def check_parallel(parallel: Any) -> None:
    """Checks ``--devices`` and ``--chunk`` (a :class:`mbd.parallel.ParallelConfig`).

    Raises:
        CLIError: naming the option (a bad value, more devices than exist).
    """
    from mbd.errors import ConfigError
    from mbd.parallel import validate_parallel

    try:
        validate_parallel(parallel)
    except ConfigError as e:
        raise CLIError(flag(e.field), e.message) from None


def is_main_process() -> bool:
    """False in the processes other than process 0 of a jax.distributed run: those run
    the same solve but write nothing."""
    import jax

    return jax.process_index() == 0


def progress_console(quiet: bool) -> Any:
    """The rich console for progress: stderr, silent with ``quiet``, in the processes
    other than process 0, and when stderr is not a terminal (a log gets the result line,
    not a progress bar's last frame)."""
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)
    console.quiet = quiet or not is_main_process() or not console.is_terminal
    return console


def say_result(text: str) -> None:
    """Prints a command's result: one line on stdout, never wrapped (the convention:
    results on stdout, progress and notes on stderr)."""
    print(text.replace("\n", " "), flush=True)


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


MANIFEST = ".mbd-run"
"""The file in an output folder that lists the files the run there wrote."""


def fresh_out_dir(base: Path) -> Path:
    """A default output folder that keeps earlier runs: ``base`` if it does not exist,
    else the first of ``base-2``, ``base-3``, ... that does not.

    Args:
        base: the folder a default name gives, e.g. ``runs/hopper-s0``.
    """
    base = Path(base)
    if not base.exists():
        return base
    n = 2
    while (out := base.with_name(f"{base.name}-{n}")).exists():
        n += 1
    return out


def _earlier_run_files(path: Path) -> list[str]:
    """The files of the run an output folder holds: the names its manifest lists (plain
    names only); none without a manifest (a folder of the user's own is left alone)."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return []
    names = [n.strip() for n in manifest.read_text().splitlines()]
    plain = [n for n in names if n and "/" not in n and "\\" not in n and n not in (".", "..")]
    return [n for n in plain if n != MANIFEST and (path / n).exists()]


@contextmanager
def atomic_out_dir(path: Path) -> Iterator[Path]:
    """Yields a temporary folder; on success its files replace the run in ``path``.

    Nothing is half-written: if the block raises, the temporary folder is removed and
    ``path`` is left as it was. One folder holds one run: the files an earlier run wrote
    there (listed in its :data:`MANIFEST`) and the new run did not are removed, with a
    note on stderr; other files (and every file of a folder without a manifest) are
    left alone, but for the new run's own, which replace files of the same name.

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
        written = sorted(item.name for item in tmp.iterdir())
        earlier = _earlier_run_files(path)
        for name in earlier:
            if name not in written:
                stale = path / name
                if stale.is_dir() and not stale.is_symlink():
                    shutil.rmtree(stale)
                else:
                    stale.unlink()
        for name in written:
            dest = path / name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(tmp / name, dest)
        (path / MANIFEST).write_text("\n".join(written) + "\n")
        if earlier:
            print(
                f"note: {path} held an earlier run; it is replaced (one folder, one run)",
                file=sys.stderr,
            )
    finally:
        _PARTIAL.discard(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def refuse_absent(args: list[str], absent: dict[str, str]) -> None:
    """Raises the one-line error for an option this command line does not offer.

    Args:
        args: the command's arguments.
        absent: field name -> why it is not offered (e.g. a task without backends).

    Raises:
        CLIError: naming the option as typed (``--x``, ``--no-x`` or ``--x=...``).
    """
    for a in args:
        opt = a.split("=")[0]
        for field, why in absent.items():
            if opt in (flag(field), "--no-" + field.replace("_", "-")):
                raise CLIError(opt, why)


def _field_help(cls: Any, name: str) -> str | None:
    """A field's documentation as one plain paragraph (no line breaks, no ``rst``)."""
    try:
        from tyro._docstrings import get_field_docstring

        doc = get_field_docstring(cls, name, ())
    except Exception:  # tyro's internals moved: keep tyro's own help
        return None
    if not doc:
        return None
    return " ".join(doc.replace("``", "`").split())


def _help_class(cls: Any, drop: tuple[str, ...] = ()) -> Any:
    """A copy of dataclass ``cls`` for tyro: every field's help one plain paragraph,
    nested dataclasses copied too, the fields in ``drop`` left out, no validation."""
    import typing
    from typing import Annotated

    import tyro

    hints = typing.get_type_hints(cls, include_extras=True)
    fields = []
    for f in dataclasses.fields(cls):
        if f.name in drop:
            continue
        typ = hints[f.name]
        markers: tuple = ()
        if typing.get_origin(typ) is Annotated:
            typ, *rest = typing.get_args(typ)
            markers = tuple(rest)
        if dataclasses.is_dataclass(typ):
            # a group: its fields carry the help; no second heading of its own
            typ = Annotated[_help_class(typ), *markers, tyro.conf.arg(help="")]
        else:
            help_text = _field_help(cls, f.name)
            extra = () if help_text is None else (tyro.conf.arg(help=help_text),)
            typ = Annotated[typ, *markers, *extra] if markers or extra else typ
        if f.default is not dataclasses.MISSING:
            spec = dataclasses.field(default=f.default)
        elif f.default_factory is not dataclasses.MISSING:
            spec = dataclasses.field(default_factory=f.default_factory)
        else:
            spec = dataclasses.field()
        fields.append((f.name, typ, spec))
    out = dataclasses.make_dataclass(cls.__name__, fields, frozen=True)
    out.__doc__ = ""  # no class description under the options' heading
    return out


def _convert(obj: Any, target: Any) -> Any:
    """Copies a dataclass value into ``target`` (a help class or an original), field by
    field, nested groups included; fields ``target`` lacks are left out."""
    names = {f.name for f in dataclasses.fields(target)}
    kw = {}
    for f in dataclasses.fields(obj):
        if f.name not in names:
            continue
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            import typing

            t = typing.get_type_hints(target, include_extras=True)[f.name]
            while typing.get_origin(t) is typing.Annotated:
                t = typing.get_args(t)[0]
            v = _convert(v, t)
        kw[f.name] = v
    return target(**kw)


def tyro_parse(
    cls: Any,
    default: Any,
    args: list[str],
    prog: str,
    description: str,
    drop: tuple[str, ...] = (),
) -> Any:
    """Parses options with tyro; its errors become one :class:`CLIError` line.

    ``--help`` prints tyro's help and exits 0 as usual; every option's help is one plain
    paragraph taken from the field's documentation.

    Args:
        cls: the options dataclass.
        default: its default value (e.g. with a task's recommendations).
        args: the command's arguments.
        prog: the program name in usage lines.
        description: one line for ``--help``.
        drop: fields not offered on this command line (they keep ``default``'s value).

    Raises:
        CLIError: for an option tyro rejects (unknown option, bad type, bad choice).
    """
    import io
    import re
    from contextlib import redirect_stderr, redirect_stdout

    import tyro

    out, err = io.StringIO(), io.StringIO()
    hcls = _help_class(cls, drop)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            parsed = tyro.cli(
                hcls, default=_convert(default, hcls), args=args, prog=prog,
                description=description,
            )  # fmt: skip
        kept = {f.name: getattr(default, f.name) for f in dataclasses.fields(cls) if f.name in drop}
        return dataclasses.replace(_convert(parsed, cls), **kept)
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
