"""Scale-out: samples sharded over devices and hosts, chunked evaluation, a memory estimate.

Each diffusion step of MBD (Alg. 2, lines 3-4) rolls out a batch of B sample control
sequences and reduces them to one estimate through their weights (Eq. 9b, 10d, 13). That
batch is the parallel part, and this module spreads it with JAX's own machinery:

- **devices** (:class:`ParallelConfig` ``devices``, or a ``jax.sharding.Mesh``): the
  sample axis is split over a device mesh. Each device rolls out B / n samples under
  ``jax.shard_map``; the estimate and the problem instance are replicated; what crosses
  devices is the B evaluations (an ``all_gather`` of B scalars each), after which every
  device computes the weights and the weighted mean (Eq. 10d, 9b) itself. B need not
  divide by n: the batch is padded with copies of its first sample whose results are
  dropped before the weights.
- **hosts**: :func:`initialize_distributed` starts ``jax.distributed`` from the usual
  environment variables; ``jax.devices()`` then lists every host's devices and the same
  mesh spans them all (every process runs the same program, SPMD).
- **chunks** (``chunk``): each device evaluates its samples ``chunk`` at a time under
  ``lax.map`` (``vmap`` inside a chunk), so the rollouts' temporaries scale with the chunk,
  not with B. MBD goes further and streams its samples: each chunk's noise comes from the
  chunk's own key, is rolled out, and is drawn again for the weighted mean (Eq. 9b), so no
  B x shape array exists and memory is a few scalars per sample plus one chunk (a
  chunked MBD solve is therefore another, equally distributed, draw than the unchunked
  one). The baselines keep their whole population and chunk only the rollouts.

Sharding changes where the rollouts run, not what is computed with their results: the
weights are reduced on every device as on one (only the B evaluations cross devices). A
device's rollouts are compiled for B / n samples instead of B, though, and XLA may
vectorize them differently: on the pure-JAX tasks every sample's reward is bitwise the
one-device reward and the solves agree to float rounding (``tests/test_parallel.py``);
Brax's hopper rounds differently (per-sample rewards up to 5e-3 apart), which contact
dynamics grow over the updates into another, equally good plan (docs/results.md).

Every method takes ``parallel=`` (MBD, the baselines, the MPC controller), as does the
command line (``--devices N``, ``--chunk C``). :func:`estimate_bytes` is the lower bound
of a solve's memory checked before compiling; the exact figure comes from XLA once the
program is compiled (:meth:`mbd.solver.ParametricSolve.compile`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

SAMPLES = "samples"
"""Name of the mesh axis :func:`make_mesh` builds over the sample axis."""

COORDINATOR_ENV = "JAX_COORDINATOR_ADDRESS"
NUM_PROCESSES_ENV = "JAX_NUM_PROCESSES"
PROCESS_ID_ENV = "JAX_PROCESS_ID"


@dataclasses.dataclass(frozen=True)
class ParallelConfig:
    """Where a solve's samples are evaluated (checked by :func:`validate_parallel`)."""

    devices: int = 1
    """devices to shard the samples over: 1 the default device, N the first N of
    jax.devices() (every host's under jax.distributed), 0 all of them; on a CPU the
    command line makes N virtual CPU devices, and one per core runs the rollouts in
    parallel (a hopper plan 2.3x faster on 2 cores)"""
    chunk: int | None = None
    """evaluate at most this many samples at once per device (lax.map over chunks), to
    fit a large --num-samples in less memory; None: all at once"""


def validate_parallel(config: ParallelConfig) -> None:
    """Checks a :class:`ParallelConfig`.

    Raises:
        mbd.errors.ConfigError: naming the field (``devices`` an integer >= 0, ``chunk``
            None or an integer >= 1, no more devices than exist).
    """
    from mbd.errors import ConfigError

    def is_int(v: Any) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool)

    if not is_int(config.devices) or config.devices < 0:
        raise ConfigError("devices", f"must be an integer >= 0 (got {config.devices!r})")
    if config.chunk is not None and (not is_int(config.chunk) or config.chunk < 1):
        raise ConfigError("chunk", f"must be None or an integer >= 1 (got {config.chunk!r})")
    have = jax.device_count()
    if config.devices > have:
        kind = jax.devices()[0].platform
        hint = (
            f"; on a CPU set XLA_FLAGS=--xla_force_host_platform_device_count={config.devices} "
            "before JAX starts (the command line does this itself)"
            if kind == "cpu"
            else ""
        )
        raise ConfigError(
            "devices", f"asked for {config.devices} but {have} {kind} device(s) exist{hint}"
        )


Parallel = ParallelConfig | jax.sharding.Mesh | None
"""What ``parallel=`` accepts: a :class:`ParallelConfig`, a mesh (samples sharded over
all its axes), or None (one device, no chunks)."""


def make_mesh(devices: int = 0) -> jax.sharding.Mesh:
    """A one-axis mesh (axis :data:`SAMPLES`) over the first ``devices`` devices.

    Args:
        devices: how many of ``jax.devices()`` (every host's); 0 takes them all.

    Raises:
        mbd.errors.ConfigError: when more devices are asked for than exist.
    """
    validate_parallel(ParallelConfig(devices=devices))
    available = jax.devices()
    n = len(available) if devices == 0 else devices
    return jax.sharding.Mesh(np.array(available[:n]), (SAMPLES,))


def resolve(parallel: Parallel) -> tuple[jax.sharding.Mesh | None, int | None]:
    """The mesh (None: no sharding) and chunk size that ``parallel`` asks for."""
    if parallel is None:
        return None, None
    if isinstance(parallel, jax.sharding.Mesh):
        return (parallel if parallel.size > 1 else None), None
    if not isinstance(parallel, ParallelConfig):
        raise TypeError(
            f"parallel must be a ParallelConfig, a jax.sharding.Mesh or None "
            f"(got {type(parallel).__name__})"
        )
    validate_parallel(parallel)
    mesh = None if parallel.devices == 1 else make_mesh(parallel.devices)
    if mesh is not None and mesh.size == 1:
        mesh = None
    return mesh, parallel.chunk


def num_devices(parallel: Parallel) -> int:
    """How many devices the samples are spread over (1 without sharding)."""
    mesh, _ = resolve(parallel)
    return 1 if mesh is None else mesh.size


def _pad_rows(x: Array, pad: int) -> Array:
    """Appends ``pad`` copies of the first row (valid inputs whose results are dropped)."""
    if pad == 0:
        return x
    return jnp.concatenate([x, jnp.broadcast_to(x[:1], (pad, *x.shape[1:]))])


def chunked(evaluate: Callable[..., Any], chunk: int | None) -> Callable[..., Any]:
    """``evaluate(zs, inst)`` over (B, ...) samples, run ``chunk`` rows at a time.

    Args:
        evaluate: a batch function whose outputs have a leading axis B.
        chunk: rows per chunk (None: the whole batch at once).

    Returns:
        A function of the same signature and results (bitwise: each row is computed by
        the same per-sample program).
    """
    if chunk is None:
        return evaluate

    def run(zs: Array, inst: Any = None):
        b = zs.shape[0]
        if b <= chunk:
            return evaluate(zs, inst)
        n = -(-b // chunk)
        parts = _pad_rows(zs, n * chunk - b).reshape(n, chunk, *zs.shape[1:])
        out = jax.lax.map(lambda part: evaluate(part, inst), parts)
        return jax.tree_util.tree_map(lambda a: a.reshape(n * chunk, *a.shape[2:])[:b], out)

    return run


def sharded(evaluate: Callable[..., Any], mesh: jax.sharding.Mesh | None) -> Callable[..., Any]:
    """``evaluate(zs, inst)`` with the sample axis of ``zs`` split over ``mesh``.

    Each device runs ``evaluate`` on its B / n rows (``jax.shard_map``); the samples and
    the instance are replicated; the outputs are gathered, so every device holds all B.
    B is padded to a multiple of n.

    Args:
        evaluate: a batch function whose outputs have a leading axis B.
        mesh: the device mesh (None: ``evaluate`` unchanged).

    Returns:
        A function of the same signature and results.
    """
    if mesh is None:
        return evaluate
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    axes = tuple(mesh.axis_names)
    n = mesh.size

    def local(zs: Array, inst: Any):
        # Each device's share of the results, gathered so every device holds all B
        # (B scalars per output: the only data that crosses devices).
        out = evaluate(zs, inst)
        return jax.tree_util.tree_map(lambda a: jax.lax.all_gather(a, axes, tiled=True), out)

    def run(zs: Array, inst: Any = None):
        b = zs.shape[0]
        # The samples stay whole on every device (each takes its share inside the
        # shard_map), so everything but the rollouts runs as on one device.
        zs = jax.lax.with_sharding_constraint(zs, NamedSharding(mesh, P()))
        padded = _pad_rows(zs, (-b) % n)
        out = jax.shard_map(
            local, mesh=mesh, in_specs=(P(axes), P()), out_specs=P(), check_vma=False
        )(padded, inst)
        return jax.tree_util.tree_map(lambda a: a[:b], out)

    return run


def spread(evaluate: Callable[..., Any], parallel: Parallel) -> Callable[..., Any]:
    """``evaluate`` sharded over the devices and chunked as ``parallel`` asks."""
    mesh, chunk = resolve(parallel)
    return sharded(chunked(evaluate, chunk), mesh)


def estimate_bytes(
    num_samples: int,
    shape: tuple[int, ...],
    state_bytes: int,
    horizon: int,
    parallel: Parallel = None,
    streamed: bool = False,
) -> int:
    """A lower bound of the memory one device needs for a solve, known before compiling.

    What must exist at once on each device:

    - the samples: the noise and the samples of its share, 2 x (B / n) x prod(shape)
      floats; when MBD streams its chunks (``streamed``), only those of one chunk over
      all devices (c n samples) and 2 scalars per sample (its reward and weight);
    - the rollouts under way, each holding its state and its per-step rewards,
      ``c x (state_bytes + 4 T)`` for the c samples evaluated at once (B / n, or the
      chunk).

    XLA's temporaries come on top (:func:`mbd.compile.program_bytes` gives the real
    figure after compiling).

    Args:
        num_samples: B.
        shape: one sample's shape, e.g. (T, nu) or (knots, nu).
        state_bytes: bytes of one state (all leaves of the dynamics' state).
        horizon: T, steps of a rollout.
        parallel: the solve's sharding and chunks.
        streamed: MBD's streamed chunks (the samples are never whole).

    Returns:
        Bytes.
    """
    mesh, chunk = resolve(parallel)
    n = 1 if mesh is None else mesh.size
    per_device = -(-num_samples // n)
    at_once = per_device if chunk is None else min(chunk, per_device)
    rollouts = at_once * (state_bytes + 4 * horizon)
    if streamed and chunk is not None:
        drawn = min(chunk * n, num_samples)  # one chunk's samples, over all devices
        return 4 * 2 * drawn * math.prod(shape) + 4 * 2 * num_samples + rollouts
    return 4 * 2 * per_device * math.prod(shape) + rollouts


def initialize_distributed() -> bool:
    """Starts ``jax.distributed`` when the environment names a coordinator.

    Reads ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``; on a CPU it selects the gloo collectives, which cross processes.
    Call it before anything else touches JAX, in every process; every process then runs
    the same solve over all hosts' devices (``--devices 0``).

    Returns:
        True when it started ``jax.distributed``; False when the variables are unset.

    Raises:
        ValueError: when the coordinator is set but the process count or id is missing
            or not an integer.
    """
    address = os.environ.get(COORDINATOR_ENV)
    if not address:
        return False
    values = {}
    for name in (NUM_PROCESSES_ENV, PROCESS_ID_ENV):
        text = os.environ.get(name, "")
        try:
            values[name] = int(text)
        except ValueError:
            raise ValueError(
                f"{COORDINATOR_ENV} is set, so {name} must be an integer (got {text!r})"
            ) from None
    count, pid = values[NUM_PROCESSES_ENV], values[PROCESS_ID_ENV]
    if count < 1 or not 0 <= pid < count:
        raise ValueError(f"need 0 <= {PROCESS_ID_ENV} < {NUM_PROCESSES_ENV} (got {pid}, {count})")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=address, num_processes=count, process_id=pid)
    if count > 1 and jax.default_backend() == "cpu":
        # gloo says "[Gloo] Rank i is connected to n peer ranks" on stdout when the
        # processes first meet: meet here, with that line sent nowhere.
        from jax.experimental import multihost_utils

        with _stdout_silenced():
            multihost_utils.sync_global_devices("mbd.parallel.initialize_distributed")
    return True


@contextlib.contextmanager
def _stdout_silenced():
    """File descriptor 1 goes to /dev/null inside the block (native libraries too)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
