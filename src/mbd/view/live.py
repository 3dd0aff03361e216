"""The live view: a page in the browser that shows a real-time loop as it runs and lets
the user steer it.

Built on viser (https://viser.studio, the library judo's GUI uses): a Python server that
ships its own three.js client (no CDN, so it works offline) and keeps every page in sync
over a WebSocket. The page shows the robot moving in 3-D, the current plan (the planned
path of the task's tracked bodies, or of the state for a problem without a model), a few
trajectories sampled around it at the planner's own noise level, and the loop's figures
(real-time factor, replanning rate, latency, reward over time). Its controls steer the
loop: the task's params as sliders (a new value is an argument of the compiled planner,
so nothing recompiles), a push (a velocity change of the robot's first tracked body),
pause and reset.

The view reads the loop from its own thread (:meth:`RealtimeLoop.snapshot`,
:meth:`RealtimeLoop.stats`) at ``fps`` frames per second and never holds up the plant or
the planner; its sampled trajectories cost one small batched rollout a few times a
second.
"""

from __future__ import annotations

import contextlib
import io
import math
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mbd.mpc.realtime import Plan, RealtimeLoop, Replan, SimPlant
from mbd.problem import rollout
from mbd.view.scene import Scene, scene_for

PLAN_COLOR = (30, 160, 60)
SAMPLE_COLOR = (150, 150, 150)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _check_number(
    name: str, value: Any, low: float, integer: bool = False, open_low: bool = False
) -> None:
    """Refuses a value that is not a finite number (an integer) >= low (> low), in one
    line naming it."""
    kinds = int if integer else int | float
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or (open_low and value == low):
        kind = "an integer" if integer else "a finite number"
        raise ValueError(
            f"{name} must be {kind} {'>' if open_low else '>='} {low:g} (got {value!r})"
        )


def _check_port(host: str, port: int) -> None:
    """Refuses a port outside [1, 65535] or one in use (viser would silently take the
    next one, and the printed address would be wrong)."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer in [1, 65535] (got {port!r})")
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            raise OSError(f"port {port} is in use") from None


def _like(value: float, old: Any) -> Any:
    """``value`` as a leaf of the same kind as ``old`` (a Python number, a NumPy or a JAX
    array, weakly typed or not, its dtype and shape), so the planner compiles nothing."""
    if isinstance(old, bool) or not isinstance(
        old, int | float | np.ndarray | np.generic | jax.Array
    ):
        raise TypeError(f"a slider steers a number (the param is a {type(old).__name__})")
    if isinstance(old, int | float):
        return type(old)(value)
    if isinstance(old, np.ndarray | np.generic):
        return np.asarray(value, old.dtype).reshape(np.shape(old))
    if getattr(old, "weak_type", False) and old.ndim == 0:  # as jnp.asarray(1.0) makes
        return jnp.asarray(float(value))
    return jnp.asarray(value, old.dtype).reshape(old.shape)


def _require_viser():
    try:
        import viser
    except ImportError:
        raise ImportError(
            "the live view needs viser: pip install 'mbd[view]' (or pip install viser)"
        ) from None
    return viser


def _polylines(paths: np.ndarray) -> np.ndarray:
    """(K, T, 3) paths -> (K (T - 1), 2, 3) segments for ``add_line_segments``."""
    paths = np.asarray(paths, np.float32)
    if paths.shape[1] < 2:
        paths = np.concatenate([paths, paths], axis=1)
    return np.stack([paths[:, :-1], paths[:, 1:]], axis=2).reshape(-1, 2, 3)


class LiveView:
    """Serves the live view of a :class:`~mbd.mpc.realtime.RealtimeLoop`.

    Start it before ``loop.run`` (or while it runs, from another thread); stop it with
    :meth:`close` (or use it as a context manager)::

        view = LiveView(loop, params={"target": (-1.5, 1.5)})
        print(view.url)
        with view:
            loop.run(jax.random.key(0), duration=math.inf)  # Ctrl-C stops it

    Args:
        loop: the loop to show and steer.
        scene: what to draw (:func:`mbd.view.scene.scene_for` of the loop's problem if
            None).
        params: the params to steer: name -> (low, high); each becomes a slider. The
            loop's params must be a dict holding them.
        port: TCP port, in [1, 65535] and free (a free one if None).
        host: the address to serve on (default 127.0.0.1: this machine only).
        title: the page's heading.
        samples: trajectories sampled around the plan to draw (0: none).
        push_speed: the push's velocity change, m/s (state units for a vector state).
        plant_params: slider changes go to a :class:`SimPlant` too (the world follows
            the command), not only to the planner; or a function ``plant(params) ->
            params`` that makes the plant's from the planner's (e.g. a mass kept off).
        fps: view updates per second.
    """

    def __init__(
        self,
        loop: RealtimeLoop,
        scene: Scene | None = None,
        params: dict[str, tuple[float, float]] | Sequence[tuple[str, float, float]] = (),
        port: int | None = None,
        host: str = "127.0.0.1",
        title: str = "mbd",
        samples: int = 4,
        push_speed: float = 0.5,
        plant_params: bool | Callable[[Any], Any] = True,
        fps: float = 20.0,
    ):
        viser = _require_viser()
        self.loop = loop
        self.problem = loop.problem
        self.scene = scene_for(self.problem) if scene is None else scene
        ranges = dict(params) if isinstance(params, dict) else {p[0]: p[1:] for p in params}
        self._check_params(ranges)
        self.params = ranges
        _check_number("samples", samples, 0, integer=True)
        _check_number("push_speed", push_speed, 0.0)
        _check_number("fps", fps, 0.0, open_low=True)
        self.samples = int(samples)
        self.push_speed = float(push_speed)
        self.plant_params = plant_params if self.problem.params is not None else False
        self.fps = float(fps)
        self.host = host
        if port is not None:
            _check_port(host, port)
        with contextlib.redirect_stdout(io.StringIO()):  # viser prints a banner on stdout
            self.server = viser.ViserServer(
                host=host, port=0 if port is None else int(port), label=title, verbose=False
            )
        self.port = int(self.server.get_port())
        if port is not None and self.port != int(port):  # viser moved on to another port
            self._stop_server()
            raise OSError(f"port {port} is in use")
        self.pushes = 0
        self._plan: Plan | None = None
        self._plan_drawn: Plan | None = None
        self._samples_at = 0.0
        self._figures_at = 0.0
        self._stop = threading.Event()
        self._followed: np.ndarray | None = None
        self._thread: threading.Thread | None = None
        self._rollout = None
        self._key = jax.random.key(0)
        self._params_lock = threading.Lock()
        try:
            self._build(title)
        except BaseException:
            self._stop_server()
            raise
        previous = loop.on_replan

        def on_replan(replan: Replan, plan: Plan) -> None:
            if previous is not None:
                previous(replan, plan)
            self._plan = plan  # drawn by the view's thread, not here

        loop.on_replan = on_replan

    # -- set-up ------------------------------------------------------------------------

    def _check_params(self, ranges: dict) -> None:
        current = self.loop.params
        for name, bounds in ranges.items():
            if not isinstance(current, dict) or name not in current:
                raise ValueError(
                    f"param {name!r} to steer is not one of the problem's params "
                    f"({', '.join(current) if isinstance(current, dict) else 'none'})"
                )
            lo, hi = (float(b) for b in bounds)
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError(f"param {name!r}: give a range low < high (got {bounds!r})")
            if np.size(current[name]) != 1:
                raise ValueError(
                    f"param {name!r}: a slider steers a scalar "
                    f"(got an array of shape {np.shape(current[name])})"
                )

    @property
    def url(self) -> str:
        """The page's address."""
        return f"http://{self.host}:{self.port}/"

    def _build(self, title: str) -> None:
        srv, scene = self.server, self.scene
        srv.scene.set_up_direction("+z")
        if scene.floor:
            srv.scene.add_grid(
                "/floor", width=8.0, height=8.0, infinite_grid=True,
                position=(0.0, 0.0, scene.floor_z),
            )  # fmt: skip
        x0 = self.problem.init_state
        pos, _ = scene.poses(x0)
        self._bodies = []
        if scene.geoms:
            for b in range(scene.num_bodies):
                self._bodies.append(srv.scene.add_frame(f"/robot/b{b}", show_axes=False))
            for j, g in enumerate(scene.geoms):
                parent = "/world" if g.body < 0 else f"/robot/b{g.body}"
                srv.scene.add_mesh_simple(
                    f"{parent}/g{j}", g.vertices, g.faces, color=g.rgb,
                    position=tuple(g.pos), wxyz=tuple(g.quat),
                )  # fmt: skip
        else:
            self._bodies.append(
                srv.scene.add_icosphere("/robot/point", radius=0.08, color=(40, 110, 220))
            )
        centre = np.mean(pos, axis=0)
        reach = max(1.5, 2.0 * float(np.max(np.linalg.norm(pos - centre, axis=1))) + 1.0)
        # from the front (-y) and a little above; the robot left of the page's panel
        look = centre + np.array([0.3 * reach, 0.0, 0.0])
        eye = look + reach * np.array([0.25, -1.5, 0.45])
        self._camera = (tuple(float(c) for c in eye), tuple(float(c) for c in look))

        @srv.on_client_connect
        def _(client) -> None:
            client.camera.up_direction = (0.0, 0.0, 1.0)
            client.camera.position, client.camera.look_at = self._camera

        gui = srv.gui
        gui.add_markdown(f"**{title}**: live MBD-MPC ({scene.label}: green the plan, grey "
                         "samples around it)")  # fmt: skip
        self._figures = gui.add_markdown("starting ...")
        self._reward_plot = gui.add_uplot(
            data=(np.zeros(1), np.zeros(1)),
            series=({"label": "time (s)"}, {"label": "reward", "stroke": "#1f77b4", "width": 2}),
            scales={"x": {"time": False}},
            title="plant reward per step over time (s)",
            aspect=2.0,
        )
        with gui.add_folder("Steer"):
            self._sliders = {}
            current = self.loop.params
            for name, (lo, hi) in self.params.items():
                value = float(np.asarray(current[name]))
                step = float(10 ** math.floor(math.log10((float(hi) - float(lo)) / 100)))
                slider = gui.add_slider(
                    name, min=float(lo), max=float(hi), step=step,
                    initial_value=min(max(value, float(lo)), float(hi)),
                )  # fmt: skip
                slider.on_update(lambda event, name=name: self._set_param(name, event.target.value))
                self._sliders[name] = slider
            simulated = isinstance(self.loop.plant, SimPlant)  # a robot is not pushed here
            push = gui.add_button("Push", disabled=not (scene.can_push and simulated))
            push.on_click(lambda event: self.push())
            self._pause = gui.add_button("Pause", disabled=not simulated)
            self._pause.on_click(lambda event: self.toggle_pause())
            reset = gui.add_button("Reset", disabled=not simulated)
            reset.on_click(lambda event: self.loop.reset())

    # -- steering ----------------------------------------------------------------------

    def _set_param(self, name: str, value: float) -> None:
        with self._params_lock:  # sliders move from viser's threads: one change at a time
            new = dict(self.loop.params)
            new[name] = _like(value, new[name])
            self.loop.set_params(new, plant=self.plant_params)

    def push(self) -> None:
        """Pushes the plant's robot (its next tick starts from the pushed state)."""
        if not self.scene.can_push or not isinstance(self.loop.plant, SimPlant):
            return
        v = self.push_speed
        # sideways for a robot free in 3-D, along x for a planar one or a state vector
        free = bool(self.scene.geoms) and self._has_free_joint()
        velocity = np.array([0.0, v, 0.0]) if free else np.array([v, 0.0, 0.0])
        self.loop.plant.perturb(lambda x: self.scene.push(x, velocity))
        self.pushes += 1

    def _has_free_joint(self) -> bool:
        m = getattr(self.problem.step, "mj_model", None)
        return m is not None and any(int(t) == 0 for t in np.asarray(m.jnt_type))

    def toggle_pause(self) -> None:
        """Pauses a running loop, or resumes a paused one."""
        if self.loop.paused:
            self.loop.resume()
        else:
            self.loop.pause()
        self._pause.label = "Resume" if self.loop.paused else "Pause"

    # -- drawing -----------------------------------------------------------------------

    def _draw_robot(self, state: Any) -> None:
        pos, quat = self.scene.poses(state)
        with self.server.atomic():
            for i, handle in enumerate(self._bodies):
                handle.position = tuple(float(c) for c in pos[i])
                if self.scene.geoms:
                    handle.wxyz = tuple(float(c) for c in quat[i])

    def _draw_plan(self, plan: Plan, state: Any) -> None:
        if plan.report.states is None:  # a planner that does not predict (MPCConfig.predict)
            return
        paths = self.scene.paths(plan.report.states)  # (K, H, 3)
        start = self.scene.paths(jax.tree_util.tree_map(lambda a: np.asarray(a)[None], state))
        paths = np.concatenate([start, paths], axis=1)
        self.server.scene.add_line_segments(
            "/plan", _polylines(paths), colors=PLAN_COLOR, thickness=0.03
        )

    def _sample_rollouts(self, plan: Plan, state: Any) -> np.ndarray | None:
        std = float(np.asarray(getattr(plan.report, "noise_std", np.nan)))
        if self.samples < 1 or not math.isfinite(std):
            return None
        if self._rollout is None:
            problem = self.problem

            def many(controls, x0, params):
                return jax.vmap(lambda u: rollout(problem, u, x0, params).states)(controls)

            self._rollout = jax.jit(many)
        low, high = self.problem.action_low, self.problem.action_high
        half = (high - low) / 2.0
        self._key, k = jax.random.split(self._key)
        eps = np.asarray(jax.random.normal(k, (self.samples, *plan.controls.shape)))
        u = np.clip(plan.controls[None] + std * half * eps, low, high).astype(np.float32)
        params = self.loop.params
        states = self._rollout(jnp.asarray(u), state, params)
        states = jax.tree_util.tree_map(np.asarray, states)
        start = self.scene.paths(jax.tree_util.tree_map(lambda a: np.asarray(a)[None], state))
        out = []
        for i in range(self.samples):
            one = jax.tree_util.tree_map(lambda a, i=i: a[i], states)
            out.append(np.concatenate([start, self.scene.paths(one)], axis=1))
        return np.concatenate(out, axis=0)

    def _draw_figures(self) -> None:
        s = self.loop.stats()

        def num(v, spec: str, unit: str = "") -> str:
            return "-" if v is None else f"{v:{spec}}{unit}"

        last = max(1, round(2.0 / self.loop.dt))  # 2 s of ticks
        mean = float(np.mean(s["rewards"][-last:])) if len(s["rewards"]) else None
        lines = [
            f"t = {s['sim_seconds']:.2f} s{' (paused)' if s['paused'] else ''}",
            f"real-time factor {num(s['realtime_factor'], '.3f')}",
            f"{num(s['replan_hz'], '.0f')} replans/s, latency {num(s['latency_ms'], '.1f', ' ms')}",
            f"{s['num_samples']} samples x {s['iterations']} updates per replan",
            f"reward {num(mean, '.3f')} (last 2 s)",
        ]
        self._figures.content = "  \n".join(lines)
        label = "Resume" if s["paused"] else "Pause"  # a run that ended resumes itself
        if self._pause.label != label:
            self._pause.label = label
        if len(s["times"]) > 1:
            self._reward_plot.data = (s["times"], s["rewards"])

    def _run(self) -> None:
        period = 1.0 / self.fps
        while not self._stop.is_set():
            began = time.perf_counter()
            try:
                self._frame()
            except Exception as e:  # the view must never stop the loop
                print(f"mbd view: warning: {type(e).__name__}: {e}", file=sys.stderr)
                self._stop.wait(1.0)
            self._stop.wait(max(0.0, period - (time.perf_counter() - began)))

    def _follow(self, state: Any) -> None:
        """The cameras move with the robot along the floor (the user's own angle and
        distance kept): every view keeps the robot in sight as it walks away."""
        here = self.scene.paths(jax.tree_util.tree_map(lambda a: np.asarray(a)[None], state))
        here = np.asarray(here[0, -1], np.float64)
        if self._followed is None:
            self._followed = here
            return
        shift = here - self._followed
        shift[2] = 0.0
        if np.linalg.norm(shift) < 0.25:
            return
        self._followed = here
        for client in self.server.get_clients().values():
            with client.atomic():
                client.camera.position = tuple(np.asarray(client.camera.position) + shift)
                client.camera.look_at = tuple(np.asarray(client.camera.look_at) + shift)

    def _frame(self) -> None:
        plan, state, _ = self.loop.snapshot()
        self._draw_robot(state)
        if self.scene.geoms:
            self._follow(state)
        now = time.perf_counter()
        plan = self._plan or plan
        if plan is not None and plan is not self._plan_drawn:
            self._draw_plan(plan, state)
            self._plan_drawn = plan
            if now - self._samples_at > 0.25:
                self._samples_at = now
                paths = self._sample_rollouts(plan, state)
                if paths is not None:
                    self.server.scene.add_line_segments(
                        "/samples", _polylines(paths), colors=SAMPLE_COLOR, thickness=0.012
                    )
        if now - self._figures_at > 0.5:
            self._figures_at = now
            self._draw_figures()

    # -- life --------------------------------------------------------------------------

    def start(self) -> LiveView:
        """Starts drawing (a daemon thread); returns self."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="mbd-view", daemon=True)
            self._thread.start()
        return self

    def close(self) -> None:
        """Stops drawing and closes the server (the page then says it lost the server)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self._stop_server()

    def _stop_server(self) -> None:
        with contextlib.suppress(Exception), contextlib.redirect_stdout(io.StringIO()):
            self.server.stop()

    def __enter__(self) -> LiveView:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["LiveView", "free_port"]
