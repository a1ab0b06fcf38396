"""Where one camera frame's time goes in the service, stage by stage, one thread:

    python tools/profile_face.py [--frames 30] [--image A.jpg ...]

Loads the engine as `cmt serve` does (Engine.load: the serving threads, warm-up), then sends
each frame through the engine's own path (JSON request parsed, image decoded, face found and
cropped, face encoder, fusion, experts and reliability, response written as JSON) `--frames`
times, and prints the median and p95 ms of each stage and of the whole. Frames: the first
frame of ../shared/media/student_face.y4m (the browser tests' fake camera, 320x240) as JPEG,
the same scaled to 640x480, and the fixture face `cmt bench` sends (350x350), unless
`--image` names others.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
Y4M = REPO.parent / "shared" / "media" / "student_face.y4m"
FIXTURE = REPO / "tests" / "fixtures" / "faces" / "Dan_Monson_0001.jpg"


def y4m_frame_jpeg(path: Path, size: tuple[int, int] | None = None) -> bytes:
    """The first frame of a 4:2:0 .y4m video as JPEG bytes (resized to size=(w, h) if given)."""
    import cv2
    from PIL import Image

    data = path.read_bytes()
    header, _, rest = data.partition(b"\n")
    fields = {f[:1]: f[1:] for f in header.split()[1:]}
    w, h = int(fields[b"W"]), int(fields[b"H"])
    _, _, rest = rest.partition(b"\n")  # "FRAME..." line
    yuv = np.frombuffer(rest[: w * h * 3 // 2], np.uint8).reshape(h * 3 // 2, w)
    rgb = cv2.cvtColor(yuv, cv2.COLOR_YUV2RGB_I420)
    if size is not None:
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


class Stages:
    """Wraps functions so that each call's time is added to its stage for the current frame."""

    def __init__(self):
        self.now: dict[str, float] = defaultdict(float)
        self.frames: list[dict[str, float]] = []

    def wrap(self, owner, attr: str, stage: str) -> None:
        inner = getattr(owner, attr)

        def timed(*args, **kwargs):
            t = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.now[stage] += (time.perf_counter() - t) * 1e3

        setattr(owner, attr, timed)

    def next_frame(self) -> None:
        self.frames.append(dict(self.now))
        self.now = defaultdict(float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=30, help="times each frame is sent")
    ap.add_argument("--image", type=Path, nargs="*", default=None, help="JPEG/PNG frames")
    args = ap.parse_args()

    import cmt.model.encoders.face as face
    from cmt.contract import AnalyzeRequest
    from cmt.serve.engine import Engine

    t = time.perf_counter()
    engine = Engine.load()
    print(f"engine {engine.version} loaded in {time.perf_counter() - t:.1f} s; "
          f"{__import__('torch').get_num_threads()} thread(s)")
    frames = {p.name: p.read_bytes() for p in args.image} if args.image else {
        "webcam 320x240": y4m_frame_jpeg(Y4M), "webcam 640x480": y4m_frame_jpeg(Y4M, (640, 480)),
        "fixture face 350x350": FIXTURE.read_bytes()}

    stages = Stages()
    stages.wrap(Engine, "_decode", "image decode")
    stages.wrap(face, "detect_face", "face detection")
    stages.wrap(face.FaceEncoder, "crop", "crop (with detection)")
    stages.wrap(face.FaceEncoder, "encode", "face encoder")
    stages.wrap(type(engine.model), "_experts", "experts, reliability")
    stages.wrap(type(engine.model), "_fuse", "fusion")  # torch, or ONNX Runtime for one modality
    stages.wrap(Engine, "_response", "response")
    for name, jpeg in frames.items():
        body = ('{"image_b64": "%s"}' % base64.b64encode(jpeg).decode()).encode()
        for k in range(args.frames + 2):
            t0 = time.perf_counter()
            req = AnalyzeRequest.model_validate_json(body)
            t1 = time.perf_counter()
            resp = engine.analyze(req)
            t2 = time.perf_counter()
            resp.model_dump_json()
            t3 = time.perf_counter()
            stages.now["request parse"] += (t1 - t0) * 1e3
            stages.now["response JSON"] += (t3 - t2) * 1e3
            stages.now["whole frame"] += (t3 - t0) * 1e3
            if k < 2:  # warm
                stages.now.clear()
                continue
            stages.next_frame()
        rows = stages.frames
        stages.frames = []
        crop = [r.get("crop (with detection)", 0) - r.get("face detection", 0) for r in rows]
        for r, c in zip(rows, crop):
            r["crop (with detection)"] = c
        print(f"\n{name}: {resp.label}, face box {resp.face_box}; {len(rows)} frames; ms")
        print(f"{'stage':>22s} {'p50':>7s} {'p95':>7s}")
        order = ["request parse", "image decode", "face detection", "crop (with detection)",
                 "face encoder", "fusion", "experts, reliability", "response", "response JSON",
                 "whole frame"]
        for stage in order:
            v = [r.get(stage, 0.0) for r in rows]
            label = "crop" if stage.startswith("crop") else stage
            print(f"{label:>22s} {statistics.median(v):7.1f} {np.percentile(v, 95):7.1f}")


if __name__ == "__main__":
    main()
