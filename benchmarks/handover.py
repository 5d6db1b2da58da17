"""The hand-over of a batch from DataLoader workers to the training process: PyTorch's per-tensor
shared memory vs lakedet's one segment per batch (``lakedet.data.handover.share_batch``).

One command (``python benchmarks/handover.py``) prints a table and writes
``benchmarks/results/handover.json``. The samples are MMDetection's own (``PackDetInputs`` of the
loader benchmark's 640x480 images with their boxes), prepared once; every pass runs a DataLoader
(batch 8, 2 workers started for the pass, ``pseudo_collate`` in the workers) whose dataset copies
prepared samples (the fresh tensors a pipeline would make) and then:

* ``none``: hands over a placeholder instead (everything but the hand-over: the baseline);
* ``pytorch``: returns the samples: PyTorch moves each tensor into its own shared-memory segment and
  passes each descriptor over its own socket connection;
* ``lakedet``: ``share_batch`` puts the batch's tensors into one segment first.

Measured per pass: CPU time of the training process and of the workers (user + system, which a
busy machine does not inflate) per image, and wall images/s. The hand-over's cost is a case's CPU
minus the ``none`` case's in the same round. In the same run, the CPU time of decoding the same
JPEGs (``simplejpeg``, as lakedet decodes) gives the ratio ``hand-over / decoding``. The cases
alternate (ABC, CBA, ...) for ``--repeats`` rounds; medians and spreads over the rounds.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import decode as decoding  # noqa: E402  (the same JPEGs, the same decoders)
import loader as bench  # noqa: E402  (render_jpegs, machine, write_results, table)

CASES = ("none", "pytorch", "lakedet")
WORKERS = 2


def packed_samples(n: int) -> tuple[list, list[bytes]]:
    """``n`` samples as MMDetection's ``PackDetInputs`` makes them, and their JPEG bytes."""
    import numpy as np
    import simplejpeg
    from mmdet.datasets.transforms import PackDetInputs
    from mmdet.structures.bbox import HorizontalBoxes

    pack = PackDetInputs()
    samples, jpegs = [], []
    for i, (data, boxes, labels) in enumerate(bench.render_jpegs(n, 640, 480, seed=0)):
        img = simplejpeg.decode_jpeg(data, colorspace="BGR")
        ltrb = np.asarray([[x, y, x + w, y + h] for x, y, w, h in boxes], np.float32)
        samples.append(pack.transform(dict(
            img=img, img_id=i, img_path=f"{i:06d}.jpg", ori_shape=img.shape[:2], img_shape=img.shape[:2],
            scale_factor=(1.0, 1.0), flip=False, flip_direction=None, gt_bboxes=HorizontalBoxes(ltrb),
            gt_bboxes_labels=np.asarray(labels, np.int64), gt_ignore_flags=np.zeros(len(labels), bool))))
        jpegs.append(data)
    return samples, jpegs


class Prepared:
    """A dataset of copies of prepared samples; ``mode`` chooses what a batch hands over."""

    def __init__(self, samples: list, length: int, mode: str):
        self.samples, self.length, self.mode = samples, length, mode

    def __len__(self) -> int:
        return self.length

    def __getitems__(self, indices):
        from lakedet.data.handover import share_batch

        batch = [copy.deepcopy(self.samples[i % len(self.samples)]) for i in indices]
        if self.mode == "none":
            return [len(batch)]
        if self.mode == "lakedet":
            share_batch(batch)
        return batch


def tensors_per_sample(sample) -> tuple[int, int]:
    """(all tensors, non-empty tensors) of one sample: the shared-memory segments PyTorch makes are
    one per non-empty tensor (an empty one passes without shared memory)."""
    from lakedet.data.handover import _slots

    tensors = [t for _, t in _slots(sample)]
    return len(tensors), sum(t.numel() > 0 for t in tensors)


def one_pass(samples: list, mode: str, images: int) -> dict:
    import torch
    from mmengine.dataset import pseudo_collate

    loader = torch.utils.data.DataLoader(Prepared(samples, images, mode), batch_size=bench.BATCH,
                                         num_workers=WORKERS, collate_fn=pseudo_collate, shuffle=False)
    self0, children0 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    count = 0
    for batch in loader:
        count += len(batch["inputs"]) if isinstance(batch, dict) else bench.BATCH
    wall = time.perf_counter() - started
    del batch
    self1, children1 = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    main = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    workers = (children1.ru_utime - children0.ru_utime) + (children1.ru_stime - children0.ru_stime)
    return dict(main_cpu_ms_per_img=main / images * 1000, worker_cpu_ms_per_img=workers / images * 1000,
                cpu_ms_per_img=(main + workers) / images * 1000, img_per_s=images / wall)


def main(argv=None) -> int:
    import cv2
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=64, help="distinct prepared samples (default 64)")
    parser.add_argument("--images", type=int, default=800, help="images per pass (default 800)")
    parser.add_argument("--repeats", type=int, default=5, help="rounds, the cases alternating")
    parser.add_argument("--out", default=str(HERE / "results" / "handover.json"))
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    samples, jpegs = packed_samples(args.n)
    decode = decoding.decoders()["simplejpeg"]
    for name in CASES:  # warm-up
        one_pass(samples, name, 8 * WORKERS * 2)
    load_before = os.getloadavg()
    runs = {name: [] for name in CASES}
    decode_runs = []
    for round_ in range(args.repeats):
        for name in (CASES if round_ % 2 == 0 else CASES[::-1]):
            runs[name].append(one_pass(samples, name, args.images))
        cpu, _ = decoding.one_pass(decode, jpegs * 3)
        decode_runs.append(cpu / (len(jpegs) * 3) * 1000)
    load_after = os.getloadavg()

    def summary(values: list[float], digits: int = 3) -> dict:
        return dict(median=round(statistics.median(values), digits), spread=[round(min(values), digits),
                                                                             round(max(values), digits)])

    cases = {name: {key: summary([r[key] for r in rows]) for key in rows[0]} for name, rows in runs.items()}
    cost = {name: [r["cpu_ms_per_img"] - base["cpu_ms_per_img"] for r, base in zip(runs[name], runs["none"])]
            for name in ("pytorch", "lakedet")}
    per_round_ratio = [c / d for c, d in zip(cost["pytorch"], decode_runs)]
    all_tensors, segments = tensors_per_sample(samples[0])
    result = dict(
        machine=bench.machine(), load_average_before=load_before, load_average_after=load_after,
        command=f"python benchmarks/handover.py --n {args.n} --images {args.images} --repeats {args.repeats}",
        batch_size=bench.BATCH, workers=WORKERS, image="640x480 BGR uint8 (PackDetInputs: 3x480x640 tensor)",
        tensors_per_image=all_tensors, pytorch_segments_per_image=segments,
        cases=cases,
        handover_cpu_ms_per_img=dict(pytorch=summary(cost["pytorch"]), lakedet=summary(cost["lakedet"])),
        decode_cpu_ms_per_img=summary(decode_runs),
        pytorch_handover_vs_decode=summary(per_round_ratio),
        lakedet_handover_vs_pytorch=round(statistics.median(cost["lakedet"]) / statistics.median(cost["pytorch"]), 3),
        raw=dict(runs=runs, decode_cpu_ms_per_img=decode_runs))
    print(f"machine: {result['machine']}; load average {load_before} -> {load_after}")
    print(f"tensors per image: {all_tensors} ({segments} non-empty: PyTorch's segments per image)")
    print(bench.table(["case", "CPU ms/img (all processes)", "spread", "main ms/img", "workers ms/img", "img/s"],
                      [(n, c["cpu_ms_per_img"]["median"], c["cpu_ms_per_img"]["spread"],
                        c["main_cpu_ms_per_img"]["median"], c["worker_cpu_ms_per_img"]["median"],
                        round(c["img_per_s"]["median"])) for n, c in cases.items()]))
    print(f"hand-over CPU ms/img (case - none): pytorch {result['handover_cpu_ms_per_img']['pytorch']}, "
          f"lakedet {result['handover_cpu_ms_per_img']['lakedet']}; decoding (simplejpeg) "
          f"{result['decode_cpu_ms_per_img']}; pytorch hand-over / decoding {result['pytorch_handover_vs_decode']}")
    bench.write_results(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
