"""Compilation: count XLA compiles, and JAX's persistent compilation cache for the CLI.

On a CPU the cost of a plan over simulator physics is the XLA compile (45-115 s for a
Brax task on 2 cores), not the solve. Two things keep it to one compile:

- solves take their problem instance (initial state, params, demonstration reference) as
  arguments (:class:`~mbd.solver.ParametricSolve`), so one compile per problem structure
  serves every seed, initial state and control step;
- the command line turns on JAX's persistent compilation cache
  (:func:`enable_persistent_cache`), so a second process with the same structure loads
  the compiled program from disk. Importing :mod:`mbd` changes no JAX setting.

:func:`count_compiles` counts XLA backend compiles (JAX's own monitoring event), which
the tests use to prove that a loop does not recompile; :func:`compile_and_run` times a
compile and a run apart (the black-box comparisons report both).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

CACHE_ENV = "MBD_CACHE_DIR"
"""Environment variable: the persistent cache folder; ``off`` (or ``none``, ``0``, empty)
disables it."""

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_lock = threading.Lock()
_names: list[str] = []
_registered = False


def _listener(event: str, duration: float, **kwargs) -> None:
    del duration
    if event == _COMPILE_EVENT:
        with _lock:
            _names.append(str(kwargs.get("fun_name", "?")))


def _ensure_listener() -> None:
    global _registered
    with _lock:
        if _registered:
            return
        from jax._src import monitoring

        monitoring.register_event_duration_secs_listener(_listener)
        _registered = True


class CompileCount:
    """XLA compiles seen since the counter started (read it at any time)."""

    def __init__(self) -> None:
        _ensure_listener()
        self._start = len(_names)

    @property
    def names(self) -> list[str]:
        """Names of the compiled programs, in order (e.g. ``jit(_solve)``)."""
        return _names[self._start :]

    @property
    def count(self) -> int:
        """Number of backend compiles since this counter was made (every program,
        also JAX's small eager ones such as making a key)."""
        return len(self.names)

    def of(self, name: str) -> int:
        """Compiles of programs whose function is called ``name`` (e.g. ``_solve``)."""
        return sum(1 for n in self.names if n == f"jit({name})")


@contextlib.contextmanager
def count_compiles() -> Iterator[CompileCount]:
    """Counts the XLA compiles of the block (every thread of the process)::

        with count_compiles() as c:
            for seed in range(5):
                solver.solve(jax.random.key(seed))
        assert c.of("_solve") == 1

    Yields:
        A :class:`CompileCount`.
    """
    yield CompileCount()


def program_bytes(compiled: object) -> int | None:
    """Memory an XLA program needs while it runs: arguments, outputs and temporaries.

    Args:
        compiled: a ``jax.stages.Compiled``.

    Returns:
        Bytes, or None when the backend gives no memory analysis.
    """
    try:
        m = compiled.memory_analysis()
        return int(m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes)
    except Exception:  # not every backend or version reports it
        return None


def available_bytes() -> int | None:
    """Memory a solve can use: the device's free memory where JAX reports it (GPUs),
    else the host's available memory (``MemAvailable``); None if neither is known."""
    import jax

    stats = jax.local_devices()[0].memory_stats()
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class SolveTooLarge(MemoryError):
    """A solve needs more memory than the machine has (checked before it runs).

    Attributes:
        need: bytes the program needs (a lower bound when ``at_least``).
        have: bytes available.
        at_least: the figure is the estimate made before compiling
            (:func:`mbd.parallel.estimate_bytes`), not XLA's analysis of the program.
    """

    def __init__(self, need: int, have: int, at_least: bool = False):
        super().__init__(
            f"the solve needs {'at least ' if at_least else ''}{need / 2**30:.1f} GiB "
            f"but {have / 2**30:.1f} GiB is available; lower --num-samples or --horizon, "
            "evaluate the samples in chunks (--chunk) or spread them over devices (--devices)"
        )
        self.need = need
        self.have = have
        self.at_least = at_least


def check_fits(need: int | None, at_least: bool = False) -> None:
    """Raises :class:`SolveTooLarge` when ``need`` bytes exceed the available memory.

    Args:
        need: bytes a program needs (None: unknown, nothing is checked).
        at_least: ``need`` is a lower bound estimated before compiling.
    """
    have = available_bytes()
    if need is not None and have is not None and need > have:
        raise SolveTooLarge(need, have, at_least)


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mbd/jax`` (``~/.cache/mbd/jax`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mbd" / "jax"


def resolve_cache_dir(option: str | None = None) -> Path | None:
    """The cache folder a command uses: the option, else ``$MBD_CACHE_DIR``, else the
    default; None when the chosen value is ``off``, ``none``, ``0`` or empty.

    Args:
        option: the ``--cache-dir`` value, or None when not given.

    Returns:
        The folder, or None for no persistent cache.
    """
    value = option if option is not None else os.environ.get(CACHE_ENV)
    if value is None:
        return default_cache_dir()
    if value.strip().lower() in ("", "off", "none", "0", "false", "no"):
        return None
    return Path(value).expanduser()


def enable_persistent_cache(path: Path | None) -> Path | None:
    """Turns JAX's persistent compilation cache on in ``path`` (off when None).

    Every compile is cached, however short (the defaults skip compiles under 1 s).

    Args:
        path: the folder (created if missing), or None to leave the cache off.

    Returns:
        The folder in use, or None when the cache is off or the folder cannot be made.
    """
    import jax

    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return path


def compile_and_run(fn: Callable[[Any], Any], key: Any) -> tuple[Any, float, float]:
    """Compiles ``fn(key)`` ahead of time, then runs it, timing the two apart.

    Args:
        fn: a jittable function of one argument (a whole solve, say).
        key: its argument.

    Returns:
        (its output, ready; compile seconds; run seconds).
    """
    import jax

    t = time.perf_counter()
    compiled = jax.jit(fn).lower(key).compile()
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    out = jax.block_until_ready(compiled(key))
    return out, compile_s, time.perf_counter() - t


__all__ = [
    "CACHE_ENV",
    "CompileCount",
    "SolveTooLarge",
    "available_bytes",
    "check_fits",
    "compile_and_run",
    "count_compiles",
    "default_cache_dir",
    "enable_persistent_cache",
    "program_bytes",
    "resolve_cache_dir",
]
