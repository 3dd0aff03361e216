"""What the live view costs the real-time loop it shows (issue 24).

Runs ``mbd mpc TASK --realtime`` three ways, side by side, per seed: without the view,
with the view and no page open, and with the page open in headless Chromium (software
WebGL, as on a machine without a GPU: the browser competes for the same cores). Prints
and writes each run's real-time factor, replanning rate, latency and missed deadlines.

    python benchmarks/bench_view.py --out docs/view/runs.json
    python benchmarks/bench_view.py --task cartpole --seconds 10 --seeds 0
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(task: str, seed: int, seconds: float, mode: str, samples: int, out: Path) -> dict:
    """One ``mbd mpc --realtime`` run; ``mode`` is none, view or page."""
    cmd = [
        "mbd", "mpc", task, "--realtime", "--duration", str(seconds), "--seed", str(seed),
        "--num-samples", str(samples), "--quiet", "--out", str(out),
    ]  # fmt: skip
    if mode != "none":
        cmd.append("--view")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    browser = None
    try:
        if mode != "none":
            line = proc.stderr.readline()
            url = re.search(r"http://\S+", line)
            if url is None:
                raise RuntimeError(f"no view line: {line!r}")
            if mode == "page":
                browser = _open(url.group(0))
        proc.wait(timeout=seconds + 300)
    finally:
        if browser is not None:
            browser()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr.read()[-2000:]}")
    s = json.loads((out / "summary.json").read_text())
    return {
        "task": task, "seed": seed, "mode": mode, "num_samples": samples,
        "realtime_factor": s["realtime_factor"], "replan_hz": s["replan_hz"],
        "latency_ms_median": s["latency_ms"]["median"], "latency_ms_p95": s["latency_ms"]["p95"],
        "missed_deadlines": s["missed_deadlines"], "replans": s["replans"],
        "return": s["closed_loop_return"], "metrics": s.get("metrics", {}),
    }  # fmt: skip


def _open(url: str):
    """Opens the page in headless Chromium; returns the function that closes it."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise RuntimeError("chromium is not installed (apt-get install chromium)")
    pw = sync_playwright().start()
    browser = pw.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"],
    )
    page = browser.new_page(viewport={"width": 1100, "height": 700})
    for _ in range(300):
        try:
            page.goto(url)
            break
        except Exception:
            time.sleep(0.2)

    def close() -> None:
        browser.close()
        pw.stop()

    return close


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="dmc-cartpole")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--num-samples", type=int, default=64)
    ap.add_argument("--modes", nargs="+", default=["none", "view", "page"])
    ap.add_argument("--out", type=Path, default=None, help="JSON file of the runs")
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in a.seeds:
            for mode in a.modes:
                r = run(a.task, seed, a.seconds, mode, a.num_samples, Path(tmp) / f"{seed}-{mode}")
                rows.append(r)
                print(
                    f"{a.task} seed {seed} {mode:>4}: RTF {r['realtime_factor']:.4f}, "
                    f"{r['replan_hz']:.1f} replans/s, latency {r['latency_ms_median']:.1f} ms "
                    f"median {r['latency_ms_p95']:.1f} p95, {r['missed_deadlines']} of "
                    f"{r['replans']} missed, return {r['return']:.3f}",
                    flush=True,
                )
    if a.out is not None:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
