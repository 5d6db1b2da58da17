"""Test plug-in, not a config: stops the storage server in the middle of a training epoch.

``StopStorageHook(epoch=1, after_iter=2)`` sends SIGKILL to the process ``$LAKEDET_STOP_PID`` (a
local S3 server started by the test) after that epoch's ``after_iter``-th iteration, while the
DataLoader workers are reading the next batches, then waits until it is gone and writes the time
to ``$LAKEDET_STOP_MARK``.
Reach it with ``custom_imports = dict(imports=['stop_storage'])`` and ``tests/configs`` on PYTHONPATH.
"""

import os
import signal
import time

from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module(force=True)
class StopStorageHook(Hook):
    def __init__(self, epoch: int = 1, after_iter: int = 2):
        self.epoch, self.after_iter = epoch, after_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.epoch != self.epoch or batch_idx + 1 != self.after_iter:
            return
        pid = int(os.environ["LAKEDET_STOP_PID"])
        os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        with open(os.environ["LAKEDET_STOP_MARK"], "w") as mark:
            mark.write(str(time.time()))
