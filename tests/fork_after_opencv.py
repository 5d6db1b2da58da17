"""lakedet DataLoader workers forked right after the parent ran OpenCV's thread pool and torch: each epoch
reads every row (run by tests/test_fork_safety.py; before, a worker could wait forever in
``cv2.setNumThreads``). Usage: python fork_after_opencv.py DATASET_PATH EPOCHS"""
import sys
import numpy as np
import cv2, torch
import lakedet
from lakedet.tools.synthetic import make_shapes_dataset
lakedet.register_all()
from mmengine.dataset import pseudo_collate
from mmdet.registry import DATASETS
make_shapes_dataset(sys.argv[1], 8, size=64)
ds = DATASETS.build(dict(type="DeepLakeDetDataset", deeplake_path=sys.argv[1], pipeline=[
    dict(type="LoadImageFromFile"), dict(type="LoadAnnotations", with_bbox=True),
    dict(type="Resize", scale=(64, 64), keep_ratio=True), dict(type="PackDetInputs")]))
a = torch.randn(512, 512)
img = np.random.randint(0, 255, (1500, 1500, 3), np.uint8)
for epoch in range(int(sys.argv[2])):
    for _ in range(3):
        a @ a
        cv2.resize(img, (2000, 2000), interpolation=cv2.INTER_CUBIC)
    cv2.setNumThreads(0 if epoch % 2 else 2)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=pseudo_collate)
    assert sum(len(b["inputs"]) for b in loader) == 8
print("read every epoch")
