"""MBD as a controller: receding-horizon MPC, in synchronous and real-time loops.

- :mod:`mbd.mpc.controller`: the controller, pure ``init`` / ``step`` / ``replan``
  functions over any planner of the registry (MBD, DIAL-MPC's annealing, baselines);
- :mod:`mbd.mpc.loops`: the synchronous loops (the plant waits for the planner):
  :func:`closed_loop` in one ``lax.scan``, :func:`run_timed` step by step with timings;
- :mod:`mbd.mpc.realtime`: the asynchronous loop, in which the plant runs at wall-clock
  pace and never waits, and the planner replans from the latest measured state;
- :mod:`mbd.mpc.deadline`: sizing the planner's budget to a replanning rate;
- ``mbd.mpc.LiveView`` (:mod:`mbd.view`, imported on first use; needs ``mbd[view]``):
  the live view of a real-time loop in the browser.
"""

from mbd.mpc.controller import (
    MPC_METHODS,
    Controller,
    ControllerState,
    MPCConfig,
    PlanReport,
    StepReport,
    dial_noise,
    make_controller,
    mbd_noise,
    validate_mpc,
)
from mbd.mpc.deadline import Fit, fit_to_rate
from mbd.mpc.loops import LoopResult, TimedLoop, check_plant_params, closed_loop, run_timed
from mbd.mpc.realtime import (
    CallbackPlant,
    FakeClock,
    PlantError,
    RealtimeLoop,
    RealtimeResult,
    SimPlant,
    WallClock,
    run_realtime,
)

__all__ = [
    "MPC_METHODS",
    "CallbackPlant",
    "Controller",
    "ControllerState",
    "FakeClock",
    "Fit",
    "LoopResult",
    "MPCConfig",
    "PlanReport",
    "PlantError",
    "RealtimeLoop",
    "RealtimeResult",
    "SimPlant",
    "StepReport",
    "TimedLoop",
    "WallClock",
    "check_plant_params",
    "closed_loop",
    "dial_noise",
    "fit_to_rate",
    "make_controller",
    "mbd_noise",
    "run_realtime",
    "run_timed",
    "validate_mpc",
]


def __getattr__(name: str):
    if name == "LiveView":  # viser is optional: imported only when asked for
        from mbd.view import LiveView

        return LiveView
    raise AttributeError(f"module 'mbd.mpc' has no attribute {name!r}")
