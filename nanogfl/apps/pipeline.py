"""Running the demo's three stages — capture, detect, show (draw + encode + output) — one after another
(serial) or overlapped in three threads (pipelined).

Pipelined: a capture thread reads the source, an inference thread runs the detector, and the calling thread
draws, encodes and shows (so an OpenCV window stays in the main thread). The stages are joined by bounded
``Handoff`` queues of one frame, one thread per stage, so frames never change order and at most one frame waits
between two stages. For a live source (a camera) a frame that arrives while the previous one still waits
replaces it and is counted as dropped: latency stays at a frame or two instead of growing. A file source is
never dropped from: its next frame is read only once the detector has taken the previous one.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from contextlib import closing
from dataclasses import dataclass
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from ..runtime.postprocess import Detections
from .frame import Frame
from .stats import FrameTiming

T = TypeVar("T")
POLL_SECONDS = 0.1  # blocked threads look up this often, so Ctrl+C and a stop are seen promptly
JOIN_SECONDS = 5.0  # a stage thread still busy after this long (a hung camera read) is left behind (daemon)


@dataclass
class Captured:
    """A frame as the source delivered it, with its timing so far."""
    frame: Frame
    timing: FrameTiming


@dataclass
class Detected:
    """A frame, its detections and its timing so far."""
    frame: Frame
    detections: Detections
    timing: FrameTiming


def captured_frames(frames: Iterable[Frame]) -> Iterator[Captured]:
    """The frames of a source, each stamped with when it was taken (``Frame.captured_at``, else when it came
    out of the source) and how long reading it took."""
    iterator = iter(frames)
    while True:
        start = time.perf_counter()
        try:
            frame = next(iterator)
        except StopIteration:
            return
        now = time.perf_counter()
        taken = now if frame.captured_at is None else frame.captured_at
        yield Captured(frame, FrameTiming(captured_at=taken, capture_ms=(now - start) * 1e3))


class _End:
    """Marks the end of a Handoff's items."""


END = _End()


class Handoff(Generic[T]):
    """A bounded FIFO between two pipeline threads.

    ``put`` waits while it is full, or with ``drop_oldest`` replaces the oldest waiting item (``on_drop`` is
    called for it). ``close`` ends it after the waiting items (with the producer's exception, if any, raised by
    ``get`` in the consumer); ``abort`` ends it at once and wakes every waiting thread.
    """

    def __init__(self, capacity: int = 1, drop_oldest: bool = False,
                 on_drop: Callable[[T], None] | None = None) -> None:
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self.on_drop = on_drop
        self.error: BaseException | None = None
        self._items: deque[T] = deque()
        self._closed = False
        self._aborted = False
        self._condition = threading.Condition()

    def put(self, item: T) -> bool:
        """Hand an item on; False when the handoff was aborted (the producer should stop)."""
        dropped = None
        with self._condition:
            while not self._aborted and len(self._items) >= self.capacity and not self.drop_oldest:
                self._condition.wait(POLL_SECONDS)
            if self._aborted:
                return False
            if len(self._items) >= self.capacity:
                dropped = self._items.popleft()
            self._items.append(item)
            self._condition.notify_all()
        if dropped is not None and self.on_drop:
            self.on_drop(dropped)
        return True

    def wait_for_room(self) -> bool:
        """Wait until ``put`` would not have to wait; False when the handoff was aborted."""
        with self._condition:
            while not self._aborted and len(self._items) >= self.capacity:
                self._condition.wait(POLL_SECONDS)
            return not self._aborted

    def get(self) -> T | _End:
        """The next item, or END once closed and empty or aborted; re-raises the producer's exception."""
        with self._condition:
            while not self._items and not self._closed and not self._aborted:
                self._condition.wait(POLL_SECONDS)
            if self._items and not self._aborted:
                item = self._items.popleft()
                self._condition.notify_all()
                return item
        if self.error is not None:
            raise self.error
        return END

    def close(self, error: BaseException | None = None) -> None:
        with self._condition:
            self.error = error
            self._closed = True
            self._condition.notify_all()

    def abort(self) -> None:
        with self._condition:
            self._aborted = True
            self._items.clear()
            self._condition.notify_all()


def run_serial(captures: Iterator[Captured], detect: Callable[[Captured], Detected],
               show: Callable[[Detected], bool]) -> bool:
    """Capture, detect and show each frame in turn in this thread; True when ``show`` asked to stop."""
    with closing(captures):
        for captured in captures:
            if not show(detect(captured)):
                return True
    return False


def run_pipelined(captures: Iterator[Captured], detect: Callable[[Captured], Detected],
                  show: Callable[[Detected], bool], drop_frames: bool,
                  on_drop: Callable[[Captured], None] | None = None) -> bool:
    """The three stages in three threads (``show`` in this one); True when ``show`` asked to stop. An exception
    in any stage (or Ctrl+C here) stops all of them and is raised here."""
    to_detect: Handoff[Captured] = Handoff(drop_oldest=drop_frames, on_drop=on_drop)
    to_show: Handoff[Detected] = Handoff()

    def capture_loop() -> None:
        try:
            with closing(captures):
                while drop_frames or to_detect.wait_for_room():  # a file is read only once its frame can move on
                    captured = next(captures, None)
                    if captured is None or not to_detect.put(captured):
                        break
            to_detect.close()
        except BaseException as e:  # handed to the showing thread, which raises it
            to_detect.close(e)

    def detect_loop() -> None:
        try:
            while (captured := to_detect.get()) is not END:
                if not to_show.put(detect(captured)):
                    return
            to_show.close()
        except BaseException as e:
            to_show.close(e)

    threads = [threading.Thread(target=capture_loop, name="demo-capture", daemon=True),
               threading.Thread(target=detect_loop, name="demo-detect", daemon=True)]
    for thread in threads:
        thread.start()
    try:
        while (detected := to_show.get()) is not END:
            if not show(detected):
                return True
        return False
    finally:
        to_detect.abort()
        to_show.abort()
        for thread in threads:
            thread.join(JOIN_SECONDS)
