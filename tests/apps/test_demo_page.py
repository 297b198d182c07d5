"""The demo's page in a real headless browser (Debian's chromium): the live stream is drawn where the page puts
it and the numbers the script fetched from /stats.json are in the page. Skipped when chromium is absent (the
test installs nothing)."""
import html
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import http_get, interrupt

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install "
                                                         "chromium); the demo page is tested in a real browser")


def get_ok(port: int, path: str) -> bytes:
    status, body = http_get(port, path)
    assert status == 200, path
    return body


def browse(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Load ``url`` in headless chromium, give its scripts 3 s of (virtual) time, then screenshot or dump."""
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", f"--user-data-dir={profile}", "--window-size=1000,700",
                           "--virtual-time-budget=3000", *args, url],
                          capture_output=True, text=True, timeout=60)


def wait_for_line(lines: queue.Queue, seen: list[str], pattern: str, process: subprocess.Popen,
                  seconds: float = 60) -> re.Match:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            continue
        if match := re.search(pattern, seen[-1]):
            return match
    raise AssertionError(f"the demo never printed {pattern!r}: {seen}")


def test_page_shows_stream_and_numbers(official_model, shared_data, tmp_path):
    video = shared_data / "video" / "carphone_pristine.mp4"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    process = subprocess.Popen(  # the default host: loopback only
        [sys.executable, "-m", "nanogfl", "demo", "--model", str(official_model), "--source", str(video),
         "--serve", "0", "--threads", "1", "--size", "160"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    seen: list[str] = []
    try:
        port = int(wait_for_line(lines, seen, r"local only: http://127\.0\.0\.1:(\d+)/", process).group(1))
        wait_for_line(lines, seen, r"source finished; still serving the last frame", process)
        url = f"http://127.0.0.1:{port}/"
        screenshot_path = tmp_path / "page.png"
        shot = browse(url, tmp_path / "profile1", f"--screenshot={screenshot_path}")
        assert screenshot_path.is_file(), shot.stderr[-2000:]
        dom = browse(url, tmp_path / "profile2", "--dump-dom").stdout
        snapshot = cv2.imdecode(np.frombuffer(get_ok(port, "/snapshot.jpg"), np.uint8), cv2.IMREAD_COLOR)
        stats = json.loads(get_ok(port, "/stats.json"))
    finally:
        interrupt(process)

    assert snapshot.shape == (144, 176, 3) and snapshot.std() > 20  # a real, non-blank annotated frame
    page = cv2.imread(str(screenshot_path))
    match = cv2.matchTemplate(page, snapshot, cv2.TM_CCOEFF_NORMED).max()
    assert match > 0.9, f"the stream's last frame is not on the page (best match {match:.2f})"

    assert stats["frames"] == 120 and stats["dropped"] == 0 and stats["fps"] > 0
    assert stats["model"] == official_model.name and stats["input_size"] == [160, 160]
    assert set(stats["stages_ms"]) == {"capture", "preprocess", "inference", "postprocess", "draw", "encode"}

    def cell(element_id: str) -> str:  # an element's text in the browser's DOM, after the page's script ran
        found = re.search(rf'id="{element_id}"[^>]*>([^<]*)<', dom)
        assert found, f"no #{element_id} in the page"
        return html.unescape(found.group(1))

    assert cell("model") == official_model.name and cell("input-size") == "160x160"
    assert cell("mode") == "pipelined" and cell("frames") == "120" and cell("dropped") == "0"
    assert float(cell("fps")) > 0 and cell("latency").endswith(" ms") and float(cell("latency")[:-3]) > 0
    assert "local only" in cell("sharing")
    assert re.search(r'<th>inference</th><td class="value">\d+\.\d ms</td>', dom)
    for name, count in stats["classes"].items():  # the current frame's detections, per class
        assert f'<th>{html.escape(name)}</th><td class="value">{count}</td>' in dom
    assert int(cell("objects")) == sum(stats["classes"].values())
