"""Features per second of each named extractor at full size, random weights, on this machine's CPU.

Each model is built at its published size (Inception-v3; DINOv2 ViT-L/14, 24 blocks of width 1024;
CLIP ViT-L/14@336px's image tower, 24 blocks of width 1024 and a 768 projection) with random weights by
the same torch-free builders `gen-eval weights get` uses, then timed in onnxruntime on random images
(64x64 in [0, 1], resized inside the graph): one batch to warm up, then ``--batches`` batches.

    OMP_NUM_THREADS=1 nice -n 19 python benchmarks/bench_extractors.py --batch-size 8 --threads 1
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnxruntime as ort


def random_vit(kind: str, rng: np.random.Generator):
    from gen_eval.weights import vit_onnx

    d, depth, p = 1024, 24, 14

    def w(*shape, scale=0.02):
        return (rng.standard_normal(shape, dtype=np.float32) * scale)

    def norm():
        return np.ones(d, np.float32), np.zeros(d, np.float32)

    blocks = [vit_onnx._Block(norm(), w(3 * d, d), w(3 * d), w(d, d), w(d), np.full(d, 1e-5, np.float32) if kind == "dinov2" else None,
                              norm(), w(4 * d, d), w(4 * d), w(d, 4 * d), w(d),
                              np.full(d, 1e-5, np.float32) if kind == "dinov2" else None) for _ in range(depth)]
    if kind == "dinov2":
        return vit_onnx.ViT(vit_onnx.DINOV2_FAMILY, 224, w(d, 3, p, p), w(d), w(d), w(1 + 16 * 16, d), None, blocks,
                            norm(), None, 1e-6, "gelu", vit_onnx.IMAGENET_MEAN, vit_onnx.IMAGENET_STD, False)
    return vit_onnx.ViT(vit_onnx.CLIP_FAMILY, 336, w(d, 3, p, p), None, w(d), w(1 + 24 * 24, d), norm(), blocks,
                        norm(), w(d, 768), 1e-5, "quick_gelu", vit_onnx.CLIP_MEAN, vit_onnx.CLIP_STD, True)


def model_bytes(name: str) -> bytes:
    rng = np.random.default_rng(0)
    if name == "inception":
        from gen_eval.exporter.inception import random_fid_weights
        from gen_eval.weights.inception_onnx import inception_model

        state = {k: v.numpy() for k, v in random_fid_weights(seed=0).items()}
        return inception_model(state, "0" * 64).SerializeToString()
    from gen_eval.weights.vit_onnx import vit_model

    return vit_model(random_vit("dinov2" if name == "dinov2-vitl14" else "clip", rng), "0" * 64, "1" * 64) \
        .SerializeToString()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--provider", default="CPUExecutionProvider")
    parser.add_argument("--names", default="inception,dinov2-vitl14,clip-vitl14-336")
    args = parser.parse_args()
    images = np.random.default_rng(1).random((args.batch_size, 3, 64, 64), dtype=np.float32)
    for name in args.names.split(","):
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(model_bytes(name), options, providers=[args.provider])
        dim = session.run(["features"], {"image": images})[0].shape[1]  # warm-up
        start = time.perf_counter()
        for _ in range(args.batches):
            session.run(["features"], {"image": images})
        seconds = time.perf_counter() - start
        rate = args.batches * args.batch_size / seconds
        print(f"{name}: {rate:.2f} features/s ({dim}-d; batch {args.batch_size}, {args.threads} thread(s), "
              f"{args.batches} batches in {seconds:.1f} s, {session.get_providers()[0]})", flush=True)
        del session


if __name__ == "__main__":
    main()
