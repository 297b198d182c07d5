"""The demo's three-thread pipeline: frames keep their order, a live source drops instead of queueing, a file
source drops nothing, stopping and errors end every thread; and the live numbers computed from the frames."""
import threading
import time

import numpy as np
import pytest

from nanogfl.apps.frame import Frame
from nanogfl.apps.pipeline import END, Detected, Handoff, captured_frames, run_pipelined, run_serial
from nanogfl.apps.stats import FrameTiming, LiveStats
from nanogfl.runtime.postprocess import Detections, class_counts

IMAGE = np.zeros((8, 8, 3), np.uint8)


def frames(count: int, every_s: float = 0.0):
    for index in range(count):
        if every_s:
            time.sleep(every_s)
        yield Frame(IMAGE, "test", index, is_still=False)


def slow_detect(seconds: float):
    def detect(captured):
        time.sleep(seconds)
        return Detected(captured.frame, Detections.empty(), captured.timing)
    return detect


def stage_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("demo-")]


@pytest.mark.parametrize("serial", [True, False])
def test_file_source_every_frame_in_order(serial):
    shown = []

    def show(item):
        time.sleep(0.001 * (item.frame.index % 3))  # uneven stage times must not reorder anything
        shown.append(item.frame.index)
        return True

    run = run_serial if serial else lambda c, d, s: run_pipelined(c, d, s, drop_frames=False)
    assert run(captured_frames(frames(30)), slow_detect(0.002), show) is False
    assert shown == list(range(30))
    assert not stage_threads()


def test_live_source_drops_rather_than_queues():
    shown, dropped = [], []
    stopped_early = run_pipelined(captured_frames(frames(60, every_s=0.002)), slow_detect(0.02),
                                  lambda item: shown.append(item.frame.index) or True, drop_frames=True,
                                  on_drop=lambda captured: dropped.append(captured.frame.index))
    assert stopped_early is False
    assert shown == sorted(shown) and len(set(shown)) == len(shown)  # never reordered or repeated
    assert sorted(shown + dropped) == list(range(60))  # every frame is either shown or counted as dropped
    assert len(dropped) > 20  # the detector is 10x slower than the source
    assert shown[-1] == 59  # the last frame is not dropped when the source ends


def test_show_asks_to_stop():
    shown = []
    stopped_early = run_pipelined(captured_frames(frames(1000)), slow_detect(0.001),
                                  lambda item: shown.append(item.frame.index) or len(shown) < 5, drop_frames=False)
    assert stopped_early is True and shown == [0, 1, 2, 3, 4]
    assert not stage_threads()


class Broken(RuntimeError):
    pass


def broken_source():
    yield from frames(3)
    raise Broken("source failed")


def test_errors_reach_the_caller():
    shown = []
    with pytest.raises(Broken, match="source failed"):
        run_pipelined(captured_frames(broken_source()), slow_detect(0.001),
                      lambda item: shown.append(item.frame.index) or True, drop_frames=False)
    assert shown == [0, 1, 2]  # what came before the failure is shown first

    def failing_detect(captured):
        raise Broken(f"detector failed on frame {captured.frame.index}")

    with pytest.raises(Broken, match="frame 0"):
        run_pipelined(captured_frames(frames(5)), failing_detect, lambda item: True, drop_frames=False)
    assert not stage_threads()


def test_handoff_waits_or_drops():
    handoff = Handoff(capacity=1)
    assert handoff.put(1)
    put_second = threading.Thread(target=handoff.put, args=(2,))
    put_second.start()
    time.sleep(0.05)
    assert put_second.is_alive()  # full: the producer waits
    assert handoff.get() == 1
    put_second.join(2)
    assert handoff.get() == 2
    handoff.close()
    assert handoff.get() is END  # closed and empty

    dropped = []
    latest = Handoff(capacity=1, drop_oldest=True, on_drop=dropped.append)
    for item in (1, 2, 3):
        assert latest.put(item)
    assert latest.get() == 3 and dropped == [1, 2]
    latest.abort()
    assert latest.put(4) is False


def test_live_stats_numbers():
    stats = LiveStats("m.param", (320, 320), "pipelined")
    assert stats.snapshot()["fps"] is None and stats.summary() is None  # before the first frame
    for index in range(5):  # one frame every 50 ms, each shown 30 + 10 * index ms after it was taken
        shown = 1.0 + index * 0.05
        stats.record(FrameTiming(captured_at=shown - 0.03 - 0.01 * index, inference_ms=20.0 + index, draw_ms=1.0,
                                 shown_at=shown), class_counts([0, 2, 0], ["person", "bicycle", "car"]))
    stats.count_dropped(2)
    snapshot = stats.snapshot()
    assert snapshot["fps"] == pytest.approx(20.0) and snapshot["frames"] == 5 and snapshot["dropped"] == 2
    assert snapshot["stages_ms"]["inference"] == 22.0 and snapshot["stages_ms"]["draw"] == 1.0
    assert snapshot["latency_ms"] == pytest.approx(50.0)
    assert snapshot["classes"] == {"person": 2, "car": 1} and list(snapshot["classes"]) == ["person", "car"]
    assert snapshot["objects"] == 3 and snapshot["input_size"] == [320, 320]
    summary = stats.summary()
    assert summary.fps == pytest.approx(20.0) and summary.latency_mean_ms == pytest.approx(50.0)
    assert summary.latency_p95_ms == pytest.approx(68.0) and summary.detect_ms == 22.0
