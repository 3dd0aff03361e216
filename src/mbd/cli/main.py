"""``mbd``: the command line. ``mbd COMMAND --help`` documents each command."""

from __future__ import annotations

import importlib
import os
import sys

from mbd.cli.common import CLIError, fail, install_interrupt_handler

# name -> module under mbd.cli with ``SUMMARY`` and ``run(argv) -> int``.
COMMANDS: dict[str, str] = {
    "plan": "mbd.cli.plan",
    "mpc": "mbd.cli.mpc",
    "optimize": "mbd.cli.optimize",
    "bbo-bench": "mbd.cli.bbo_bench",
    "mlp": "mbd.cli.mlp",
    "figures": "mbd.cli.figures",
    "tasks": "mbd.cli.tasks",
    "bench": "mbd.cli.bench",
    "report": "mbd.cli.report",
    "rl": "mbd.cli.rl",
}


# Commands that compile: they use JAX's persistent compilation cache (see mbd.compile).
COMPILING = {"plan", "mpc", "optimize", "bbo-bench", "mlp", "figures", "bench", "rl"}


def _take_cache_option(argv: list[str]) -> tuple[list[str], str | None]:
    """Removes ``--cache-dir DIR`` / ``--cache-dir=DIR`` (a global option) from argv."""
    rest, value = [], None
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--cache-dir":
            if i + 1 >= len(argv):
                raise ValueError("needs a folder (or 'off')")
            value = argv[i + 1]
            i += 2
            continue
        if a.startswith("--cache-dir="):
            value = a.split("=", 1)[1]
        else:
            rest.append(a)
        i += 1
    return rest, value


def _devices_option(argv: list[str]) -> int | None:
    """The value of ``--devices N`` in argv, if it is an integer (checked later)."""
    for i, a in enumerate(argv):
        text = a.split("=", 1)[1] if a.startswith("--devices=") else None
        if a == "--devices" and i + 1 < len(argv):
            text = argv[i + 1]
        if text is not None:
            try:
                return int(text)
            except ValueError:
                return None
    return None


def max_cpu_devices() -> int:
    """The most virtual CPU devices ``--devices`` may ask for: 4 per core, at least 8.

    More only add threads that wait on each other; thousands make XLA's collectives
    abort after minutes.
    """
    return max(8, 4 * (os.cpu_count() or 1))


def _prepare_jax(argv: list[str]) -> None:
    """Before JAX starts: virtual CPU devices for ``--devices N``, and jax.distributed
    when ``JAX_COORDINATOR_ADDRESS`` names a coordinator (see :mod:`mbd.parallel`).

    On a CPU, XLA makes one device, which runs a rollout scan mostly on one thread;
    ``--devices N`` there makes N devices, whose shares of the samples run side by side
    (one per core is the useful number). A GPU machine is unaffected: its devices are the
    GPUs.

    Raises:
        CLIError: ``--devices`` above :func:`max_cpu_devices`.
    """
    import jax

    from mbd.parallel import initialize_distributed

    n = _devices_option(argv)
    if n is not None and n > max_cpu_devices():
        cores = os.cpu_count() or 1
        raise CLIError(
            "--devices",
            f"at most {max_cpu_devices()} on this machine ({cores} cores; more devices only "
            f"add threads that wait on each other) (got {n})",
        )
    if (
        n is not None
        and n > 1
        and "host_platform_device_count" not in os.environ.get("XLA_FLAGS", "")
    ):
        try:
            jax.config.update("jax_num_cpu_devices", n)
        except RuntimeError:  # JAX already started in this process (an in-process call)
            pass
    if not jax.distributed.is_initialized():
        initialize_distributed()


def _usage() -> str:
    import mbd

    lines = [
        f"mbd {mbd.__version__}: Model-Based Diffusion for trajectory optimization",
        "",
        "usage: mbd COMMAND [options]",
        "",
        "commands:",
    ]
    for name, mod in COMMANDS.items():
        lines.append(f"  {name:<10} {importlib.import_module(mod).SUMMARY}")
    lines += [
        "",
        "`mbd COMMAND --help` shows a command's options.",
        "",
        "global option: --cache-dir DIR  where compiled programs are cached between runs",
        "  (default ~/.cache/mbd/jax, or $MBD_CACHE_DIR; 'off' disables the cache)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Runs the command line.

    Args:
        argv: arguments without the program name (``sys.argv[1:]`` if None; then, as a
            console script, Ctrl-C prints one line and exits 130).

    Returns:
        Exit code: 0 on success, 2 for a usage error.
    """
    from_shell = argv is None
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        argv, cache_option = _take_cache_option(argv)
    except ValueError as e:
        return fail("mbd", CLIError("--cache-dir", str(e)))
    if from_shell:  # the console script: Ctrl-C -> one line, exit 130 (not in-process calls)
        install_interrupt_handler(f"mbd {argv[0]}" if argv else "mbd")
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0 if argv else 2
    if argv[0] == "--version":
        import mbd

        print(mbd.__version__)
        return 0
    name = argv[0]
    if name not in COMMANDS:
        return fail(
            "mbd",
            CLIError("COMMAND", f"unknown command {name!r}; choose one of {', '.join(COMMANDS)}"),
        )
    if name in COMPILING and not any(a in ("-h", "--help") for a in argv[1:]):
        from mbd.compile import enable_persistent_cache, resolve_cache_dir

        try:
            _prepare_jax(argv[1:])
        except CLIError as e:
            return fail(f"mbd {name}", e)
        except ValueError as e:
            return fail("mbd", CLIError("JAX_COORDINATOR_ADDRESS", str(e)))

        wanted = resolve_cache_dir(cache_option)
        if wanted is not None and enable_persistent_cache(wanted) is None:
            print(
                f"mbd: warning: cannot create the compilation cache folder {wanted}; "
                "compiling without a cache",
                file=sys.stderr,
            )
    try:
        return importlib.import_module(COMMANDS[name]).run(argv[1:])
    except BrokenPipeError:  # output piped into e.g. `head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
