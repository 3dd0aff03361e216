"""The RL baseline: Brax's PPO and SAC trainers with the paper's hyper-parameters.

Pan et al. (2024) compare MBD with policies trained by Brax (A.4.3, Tables 5 and 6): PPO
on every task but hopper, SAC on hopper, evaluated by the mean per-step reward over 50
steps, 8 episodes. This module trains one policy under a given ``timesteps`` budget and
evaluates it that way. The paper trained for 6.5M-100M steps on a GPU; on a CPU only a
small budget fits, and the result records the budget next to the paper's.

Hyper-parameters: reward scaling, episode length, minibatches, updates per batch,
discounting and learning rate are the paper's (Tables 5 and 6). The parallel width
(``num_envs``, ``batch_size``) is not in the paper (Brax's defaults are thousands of
environments on an accelerator); it is scaled down here to fit the budget and recorded.

Environments, by name: a task of :mod:`mbd.tasks` whose spec has ``make_env()`` (a Brax
env), else a task whose problem's step keeps its Brax env (``problem.step.env``, as the
robot tasks' adapter does), wrapped so that the policy is rewarded by the task's own reward
(``problem.step.reward``) in the task's action box; otherwise a stock environment of
``brax.envs.get_environment`` with Brax's reward. The record says which. Brax is an
extra: ``pip install 'mbd[rl]'``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from typing import Any, Literal

import numpy as np

EVAL_STEPS = 50
EVAL_EPISODES = 8
CPU_NOTE = (
    "RL on this machine trains with a small budget ({timesteps:,} env steps on {backend}); "
    "the paper trained {paper:,} steps on a GPU (Table 5), so this is a small-budget floor, "
    "not the paper's RL result."
)


@dataclasses.dataclass(frozen=True)
class RLHyper:
    """One row of the paper's Tables 5 and 6.

    Attributes:
        algorithm: ``ppo`` or ``sac``.
        timesteps: the paper's training budget (env steps).
        reward_scaling: reward scaling.
        episode_length: training episode length.
        num_minibatches: minibatches per update (PPO).
        updates_per_batch: updates (epochs) per batch (PPO).
        discounting: gamma.
        learning_rate: learning rate.
    """

    algorithm: Literal["ppo", "sac"]
    timesteps: int
    reward_scaling: float
    episode_length: int
    num_minibatches: int
    updates_per_batch: int
    discounting: float
    learning_rate: float


# Paper Table 5 (algorithm, timesteps, reward scaling, episode length) and Table 6
# (minibatches, updates per batch, discounting, learning rate).
PAPER_RL: dict[str, RLHyper] = {
    "ant": RLHyper("ppo", 100_000_000, 10.0, 1000, 32, 4, 0.97, 3e-4),
    "hopper": RLHyper("sac", 6_553_600, 30.0, 1000, 32, 4, 0.997, 6e-4),
    "walker2d": RLHyper("ppo", 50_000_000, 1.0, 1000, 32, 8, 0.95, 3e-4),
    "halfcheetah": RLHyper("ppo", 50_000_000, 1.0, 1000, 32, 8, 0.95, 3e-4),
    "pusher": RLHyper("ppo", 50_000_000, 5.0, 1000, 16, 8, 0.95, 3e-4),
    "pusht": RLHyper("ppo", 100_000_000, 1.0, 100, 16, 8, 0.99, 3e-4),
    "humanoidrun": RLHyper("ppo", 100_000_000, 0.1, 100, 32, 8, 0.97, 3e-4),
    "humanoidstandup": RLHyper("ppo", 100_000_000, 0.1, 1000, 32, 8, 0.97, 6e-4),
}
# For an environment the paper did not train on (e.g. a stock Brax env in a test).
DEFAULT_RL = RLHyper("ppo", 50_000_000, 1.0, 1000, 32, 8, 0.95, 3e-4)


def _brax() -> Any:
    try:
        import brax.envs
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the RL baseline needs brax: pip install 'mbd[rl]'") from e
    return brax.envs


def resolve_env(name: str, backend: str = "positional") -> tuple[Any, str]:
    """The Brax environment of a task name.

    Args:
        name: a task of :mod:`mbd.tasks` (with ``make_env``, or whose problem's step has
            ``env``), or a Brax environment name.
        backend: Brax pipeline for stock environments (the paper: positional).

    Returns:
        (a Brax ``PipelineEnv``, a description of where it came from).

    Raises:
        KeyError: when neither knows the name.
    """
    envs = _brax()
    from mbd.tasks import get_task

    try:
        spec = get_task(name)
    except KeyError:
        spec = None
    make_env = getattr(spec, "make_env", None)
    if make_env is not None:
        return make_env(), f"mbd task {name!r} (the paper's reward)"
    if spec is not None:
        problem = spec.make(horizon=spec.horizon, demo=False, seed=0)
        env = getattr(problem.step, "env", None)
        if env is not None:
            reward = getattr(problem.step, "reward", None)
            if reward is not None and problem.params is not None:
                reward = functools.partial(_with_params, reward, problem.params)
            wrapped = task_env(env, reward, problem.action_low, problem.action_high)
            return wrapped, f"mbd task {name!r}: its Brax env with the task's reward"
    try:
        env = envs.get_environment(name, backend=backend)
    except KeyError:
        raise KeyError(
            f"no Brax environment for {name!r}: not an mbd task with make_env, nor one of "
            f"Brax's ({', '.join(sorted(envs._envs))})"
        ) from None
    return env, f"Brax stock env {name!r}, {backend} backend (Brax's own reward)"


def _with_params(reward: Any, params: Any, state: Any, u: Any, nxt: Any) -> Any:
    return reward(state, u, nxt, params)


def task_env(env: Any, reward: Any, low: Any, high: Any) -> Any:
    """A Brax env that acts and is rewarded as an mbd task's :class:`~mbd.problem.Problem`.

    Policies act in [-1, 1] (Brax's tanh policies), mapped affinely to the task's action
    box as ``Problem.controls`` maps the planners' controls; the reward is the task's
    ``reward(state, u, next_state)`` (the env's own where None).

    Args:
        env: the Brax env behind the task (``problem.step.env``).
        reward: the task's reward on Brax states, or None.
        low: action lower bounds (nu,).
        high: action upper bounds (nu,).

    Returns:
        A ``brax.envs.Wrapper``.
    """
    import jax.numpy as jnp

    base = _brax().Wrapper
    lo, hi = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)

    class TaskEnv(base):
        def step(self, state, action):
            u = lo + (jnp.clip(action, -1.0, 1.0) + 1.0) * 0.5 * (hi - lo)
            nxt = self.env.step(state, u)
            if reward is None:
                return nxt
            return nxt.replace(reward=jnp.asarray(reward(state, u, nxt), jnp.float32))

    return TaskEnv(env)


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """Options of one RL run (the rest are the paper's, :data:`PAPER_RL`).

    Attributes:
        timesteps: training budget in environment steps (>= 1).
        num_envs: parallel environments (the CPU scale-down; >= 1).
        batch_size: PPO batch size / SAC batch size (>= 1).
        unroll_length: PPO unroll length.
        eval_steps: steps per evaluation episode (paper: 50).
        eval_episodes: evaluation episodes (paper: 8).
        algorithm: override the paper's algorithm (None: Table 5's).
    """

    timesteps: int = 100_000
    num_envs: int = 32
    batch_size: int = 32
    unroll_length: int = 5
    eval_steps: int = EVAL_STEPS
    eval_episodes: int = EVAL_EPISODES
    algorithm: Literal["ppo", "sac"] | None = None

    def __post_init__(self) -> None:
        from mbd.baselines._common import check_int

        for f in ("timesteps", "num_envs", "batch_size", "unroll_length", "eval_steps",
                  "eval_episodes"):  # fmt: skip
            check_int(f, getattr(self, f), 1)


def _replicate(x: Any, devices: Any) -> Any:
    """Drop-in for ``jax.device_put_replicated`` (removed in JAX 0.10), which Brax's
    trainers (0.14.2) still call: stack x once per device, shard the stack over them."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    sharding = NamedSharding(Mesh(np.asarray(devices), ("d",)), PartitionSpec("d"))
    n = len(devices)
    return jax.tree_util.tree_map(
        lambda a: jax.device_put(jnp.stack([jnp.asarray(a)] * n), sharding), x
    )


@contextlib.contextmanager
def _brax_jax_compat():
    """Provides ``jax.device_put_replicated`` for the duration of a Brax training call
    when the installed JAX no longer has it, and removes it afterwards."""
    import jax

    try:
        jax.device_put_replicated  # noqa: B018
        missing = False
    except AttributeError:
        missing = True
    if missing:
        jax.device_put_replicated = _replicate
    try:
        yield
    finally:
        if missing:
            del jax.device_put_replicated


def evaluate_policy(env: Any, policy: Any, seed: int, steps: int, episodes: int) -> np.ndarray:
    """Mean per-step reward of a policy, as the paper evaluates (50 steps, 8 episodes).

    Args:
        env: the Brax environment (unwrapped; the episode is not cut at termination).
        policy: ``policy(obs, key) -> (action, extras)``.
        seed: evaluation seed.
        steps: steps per episode.
        episodes: episodes (vmapped).

    Returns:
        (episodes,) mean per-step reward of each episode.
    """
    import jax
    import jax.numpy as jnp

    def episode(key):
        k_reset, k_act = jax.random.split(key)
        state = env.reset(k_reset)

        def body(st, k):
            action, _ = policy(st.obs, k)
            st = env.step(st, action)
            return st, st.reward

        _, rewards = jax.lax.scan(body, state, jax.random.split(k_act, steps))
        return jnp.mean(rewards)

    keys = jax.random.split(jax.random.key(seed + 10_000), episodes)
    return np.asarray(jax.jit(jax.vmap(episode))(keys))


def train_and_evaluate(
    task: str, timesteps: int = 100_000, seed: int = 0, config: RLConfig | None = None
) -> dict[str, Any]:
    """Trains PPO or SAC on a task with the paper's hyper-parameters, then evaluates it.

    Args:
        task: task or Brax environment name (see :func:`resolve_env`).
        timesteps: training budget (overrides ``config.timesteps``).
        seed: training seed (evaluation uses ``seed + 10000``).
        config: scale-down and evaluation options.

    Returns:
        JSON-ready dict: task, env, algorithm, reward (mean per-step reward over
        ``eval_episodes`` x ``eval_steps``), reward_std over episodes, eval_rewards,
        eval_steps, eval_episodes, timesteps (asked) and timesteps_done, the paper's
        timesteps, hyper (the paper's row), scale (num_envs, batch_size, ...),
        train_seconds (compile included), backend, note.
    """
    import jax

    config = dataclasses.replace(config or RLConfig(), timesteps=timesteps)
    env, source = resolve_env(task)
    hyper = PAPER_RL.get(task, DEFAULT_RL)
    algorithm = config.algorithm or hyper.algorithm
    done_steps: list[int] = []

    def progress(step, metrics):
        done_steps.append(int(step))

    if algorithm == "ppo":
        from brax.training.agents.ppo import train as ppo

        # Brax needs batch_size * num_minibatches divisible by num_envs.
        num_envs = min(config.num_envs, config.batch_size * hyper.num_minibatches)
        while (config.batch_size * hyper.num_minibatches) % num_envs:
            num_envs -= 1
        scale = {"num_envs": num_envs, "batch_size": config.batch_size,
                 "unroll_length": config.unroll_length}  # fmt: skip
        train_fn = functools.partial(
            ppo.train,
            num_minibatches=hyper.num_minibatches,
            num_updates_per_batch=hyper.updates_per_batch,
            unroll_length=config.unroll_length,
            entropy_cost=1e-2,
            normalize_observations=True,
        )
    else:
        from brax.training.agents.sac import train as sac

        num_envs = config.num_envs
        min_replay = min(8192, max(config.batch_size, config.timesteps // 4))
        scale = {"num_envs": num_envs, "batch_size": config.batch_size,
                 "min_replay_size": min_replay, "grad_updates_per_step": 8}  # fmt: skip
        train_fn = functools.partial(
            sac.train,
            min_replay_size=min_replay,
            max_replay_size=max(config.timesteps, min_replay),
            grad_updates_per_step=8,
            normalize_observations=True,
        )
    t0 = time.perf_counter()
    with _brax_jax_compat():
        make_policy, params, _ = train_fn(
            environment=env,
            num_timesteps=config.timesteps,
            num_evals=2,
            episode_length=hyper.episode_length,
            reward_scaling=hyper.reward_scaling,
            discounting=hyper.discounting,
            learning_rate=hyper.learning_rate,
            num_envs=num_envs,
            batch_size=config.batch_size,
            seed=seed,
            num_eval_envs=config.eval_episodes,
            progress_fn=progress,
        )
    jax.block_until_ready(params)
    train_seconds = time.perf_counter() - t0
    policy = make_policy(params, deterministic=True)
    rewards = evaluate_policy(env, policy, seed, config.eval_steps, config.eval_episodes)
    backend = jax.default_backend()
    return {
        "task": task,
        "env": source,
        "algorithm": algorithm,
        "reward": float(np.mean(rewards)),
        "reward_std": float(np.std(rewards)),
        "eval_rewards": [float(r) for r in rewards],
        "eval_steps": config.eval_steps,
        "eval_episodes": config.eval_episodes,
        "timesteps": config.timesteps,
        "timesteps_done": max(done_steps) if done_steps else None,
        "paper_timesteps": hyper.timesteps,
        "hyper": dataclasses.asdict(hyper),
        "hyper_source": "paper Tables 5-6" if task in PAPER_RL else "default (not in paper)",
        "scale": scale,
        "seed": seed,
        "train_seconds": train_seconds,
        "backend": backend,
        "note": CPU_NOTE.format(timesteps=config.timesteps, backend=backend, paper=hyper.timesteps),
    }
