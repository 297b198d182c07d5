"""``nanogfl demo --model M --source S``: live detection on a camera, the Pi camera, a video, an image or a
folder."""
from __future__ import annotations

import argparse

from ..contract import DEMO_MAX_CLIENTS, DEPLOY_SCORE_THRESHOLD, PICAMERA_SIZE
from .common import add_model, add_precision, add_size, add_threads, add_track


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="live detection on a webcam, Pi camera, video, image or folder")
    add_model(p, "checkpoint (.pt), ONNX (.onnx) or ncnn (.param)")
    p.add_argument("--source", default="0",
                   help="camera index (V4L2, e.g. a USB webcam), picamera (a Raspberry Pi camera module through "
                        "Picamera2), video file, image, folder or glob pattern")
    p.add_argument("--camera-size", nargs=2, type=int, default=list(PICAMERA_SIZE), metavar=("W", "H"),
                   help=f"capture size of --source picamera (default: {PICAMERA_SIZE[0]} {PICAMERA_SIZE[1]})")
    p.add_argument("--out", "--save", dest="out", metavar="FILE", help="write the annotated stream to this video")
    p.add_argument("--serve", type=int, metavar="PORT",
                   help="serve a page with the annotated stream and live numbers over HTTP (/: page, /stream: "
                        "MJPEG, /stats.json: the numbers, /snapshot.jpg: the latest frame); 0: any free port")
    p.add_argument("--host", default="127.0.0.1",
                   help="address for --serve (default: %(default)s, this machine only; 0.0.0.0 shares the page on "
                        "the LAN)")
    p.add_argument("--max-clients", type=int, default=DEMO_MAX_CLIENTS,
                   help="--serve: stream viewers at once; more get a one-line 503 (default: %(default)s)")
    p.add_argument("--serial", action="store_true",
                   help="capture, detect and draw/encode in one thread, one after another (for comparison); by "
                        "default they overlap in three threads, and a camera's frames that arrive while the detector "
                        "is busy are dropped (counted) rather than queued")
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
    stream = FrameStream(args.source, tuple(args.camera_size))  # first: a missing camera fails before the model
    try:
        backend = open_model_file(args.model, threads=args.threads, input_hw=input_size(args.size),
                                  precision=args.precision)
        detector = Detector(backend, score_threshold=tracking.low_score if tracking else args.score)
        outputs = DemoOutputs(video=args.out, serve_port=args.serve, host=args.host, max_clients=args.max_clients,
                              window=not args.no_window, max_frames=args.max_frames, serial=args.serial)
        return run_demo(stream, detector, outputs, tracking)
    finally:
        stream.close()
