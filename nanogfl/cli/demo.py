"""``nanogfl demo --model M --source S``: live detection on a camera, video, image or folder."""
from __future__ import annotations

import argparse

from ..contract import DEPLOY_SCORE_THRESHOLD
from .common import add_model, add_precision, add_size, add_threads, add_track


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="live detection on a webcam, video, image or folder")
    add_model(p, "checkpoint (.pt), ONNX (.onnx) or ncnn (.param)")
    p.add_argument("--source", default="0", help="camera index, video file, image or folder")
    p.add_argument("--out", "--save", dest="out", metavar="FILE", help="write the annotated stream to this video")
    p.add_argument("--serve", type=int, metavar="PORT", help="serve the annotated stream as MJPEG over HTTP")
    p.add_argument("--host", default="0.0.0.0", help="address for --serve")
    p.add_argument("--no-window", action="store_true", help="never open a window")
    p.add_argument("--score", type=float, default=DEPLOY_SCORE_THRESHOLD, help="score threshold")
    add_track(p)
    p.add_argument("--max-frames", type=int, default=0, help="stop after N frames (0: until the source ends)")
    add_size(p)
    add_threads(p)
    add_precision(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.demo import DemoOutputs, run_demo
    from ..apps.sources import FrameStream
    from ..runtime.detector import Detector
    from .common import input_size, open_model_file, tracker_settings

    tracking = tracker_settings(args.track, args.score)
    stream = FrameStream(args.source)  # first: a missing camera is reported before the model loads
    try:
        backend = open_model_file(args.model, threads=args.threads, input_hw=input_size(args.size),
                                  precision=args.precision)
        detector = Detector(backend, score_threshold=tracking.low_score if tracking else args.score)
        outputs = DemoOutputs(video=args.out, serve_port=args.serve, host=args.host, window=not args.no_window,
                              max_frames=args.max_frames)
        return run_demo(stream, detector, outputs, tracking)
    finally:
        stream.close()
