"""The live view of a real-time loop in the browser (``mbd mpc TASK --realtime --view``).

- :mod:`mbd.view.scene`: what is drawn of a problem (its MuJoCo model's geoms posed by
  MuJoCo's kinematics, a task's drawing, or its state as a point) and how a push changes
  its state.
- :mod:`mbd.view.live`: :class:`LiveView`, the page (viser: a server with its own three.js
  client, offline) that shows the loop as it runs and steers it.

``pip install 'mbd[view]'`` installs viser. Nothing here is imported by ``import mbd``.
"""

from mbd.view.live import LiveView, free_port
from mbd.view.scene import Drawing, Scene, scene_for

__all__ = ["Drawing", "LiveView", "Scene", "free_port", "scene_for"]
