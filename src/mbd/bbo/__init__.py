"""MBD as a zeroth-order optimizer (paper Appendix A.2).

- test functions and user functions as minimization problems on a box
  (:mod:`mbd.bbo.functions`),
- :func:`minimize`: MBD on such a problem (by default :func:`default_config`, the
  best configuration measured; :data:`BBO_CONFIG` is the paper's), optionally with IPOP
  :class:`Restarts` (:mod:`mbd.bbo.optimize`),
- equal-budget comparisons with pycma, evosax, nevergrad and random search
  (:mod:`mbd.bbo.compare`, :mod:`mbd.bbo.bench`),
- gradient-free training of a small MLP (:mod:`mbd.bbo.mlp`).
"""

from mbd.bbo.functions import (
    FUNCTIONS,
    BBOProblem,
    TestFunction,
    get_function,
    make_test_problem,
    make_user_problem,
)
from mbd.bbo.optimize import (
    BBO_CONFIG,
    MinimizeResult,
    Restarts,
    RunRecord,
    default_config,
    minimize,
    plot_convergence,
)

__all__ = [
    "BBO_CONFIG",
    "FUNCTIONS",
    "BBOProblem",
    "MinimizeResult",
    "Restarts",
    "RunRecord",
    "TestFunction",
    "default_config",
    "get_function",
    "make_test_problem",
    "make_user_problem",
    "minimize",
    "plot_convergence",
]
