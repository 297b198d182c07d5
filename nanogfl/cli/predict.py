"""``nanogfl predict --model M --source S``: detections for images, folders, globs and videos."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..contract import DEPLOY_SCORE_THRESHOLD
from .common import add_device, add_json, add_model, add_precision, add_size, add_threads, add_track


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="detect objects in an image, folder, glob or video")
    add_model(p, "checkpoint (.pt), ONNX (.onnx) or ncnn (.param)")
    p.add_argument("--source", required=True, help="image, folder, glob pattern or video file")
    p.add_argument("--out", "--save", dest="out", metavar="DIR", help="write annotated images/videos here")
    add_json(p, "one line of detections per image or video frame")
    p.add_argument("--score", type=float, default=DEPLOY_SCORE_THRESHOLD, help="score threshold")
    add_track(p)
    add_size(p)
    add_threads(p)
    add_precision(p)
    add_device(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..apps.predict import check_source, predict
    from ..runtime.detector import Detector
    from .common import input_size, open_model_file, tracker_settings

    check_source(args.source)  # a typo fails before the model loads
    tracking = tracker_settings(args.track, args.score)
    backend = open_model_file(args.model, threads=args.threads, input_hw=input_size(args.size),
                              precision=args.precision, device=args.device)
    detector = Detector(backend, score_threshold=tracking.low_score if tracking else args.score)
    out = Path(args.out) if args.out else None
    if args.json in (None, "-"):
        predict(detector, args.source, out, sys.stdout if args.json else None, tracking)
        return 0
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    with open(args.json, "w") as json_out:  # JSON lines, streamed as frames are processed
        predict(detector, args.source, out, json_out, tracking)
    print(f"wrote {args.json}")
    return 0
