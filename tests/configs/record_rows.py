"""Test plug-in, not a config: records which rows each rank and DataLoader worker reads.

``RecordRow`` (a pipeline step) appends ``{"rank", "pid", "worker", "epoch", "row"}`` as one JSON
line to ``$LAKEDET_RECORD_ROWS_DIR/rows-<rank>-<pid>.jsonl`` for every sample it sees (``row`` is the
sample's ``img_id``, its Deep Lake row). ``RecordEpochHook`` publishes the epoch to the workers
through the environment before each epoch's workers start (``persistent_workers=False``).
Reach both with ``custom_imports = dict(imports=['record_rows'])`` and ``tests/configs`` on PYTHONPATH.
"""

import json
import os

from mmcv.transforms import BaseTransform
from mmengine.hooks import Hook
from mmdet.registry import HOOKS, TRANSFORMS

DIR_VAR, EPOCH_VAR = "LAKEDET_RECORD_ROWS_DIR", "LAKEDET_RECORD_EPOCH"


@HOOKS.register_module(force=True)
class RecordEpochHook(Hook):
    def before_train_epoch(self, runner):
        os.environ[EPOCH_VAR] = str(runner.epoch)


@TRANSFORMS.register_module(force=True)
class RecordRow(BaseTransform):
    def transform(self, results: dict) -> dict:
        from torch.utils.data import get_worker_info

        worker = get_worker_info()
        rank = int(os.environ.get("RANK", "0"))
        line = dict(rank=rank, pid=os.getpid(), worker=worker.id if worker else -1,
                    epoch=int(os.environ.get(EPOCH_VAR, "-1")), row=int(results["img_id"]))
        with open(os.path.join(os.environ[DIR_VAR], f"rows-{rank}-{os.getpid()}.jsonl"), "a") as out:
            out.write(json.dumps(line) + "\n")
        return results
