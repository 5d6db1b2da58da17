"""Test plug-in, not a config: stops the storage server at the start of a training epoch.

``StopStorageHook(epoch=1)`` sends SIGKILL to the process ``$LAKEDET_STOP_PID`` (a local S3 server
started by the test) before that epoch's DataLoader workers start, then waits until it is gone:
the storage disappears in the middle of training, deterministically.
Reach it with ``custom_imports = dict(imports=['stop_storage'])`` and ``tests/configs`` on PYTHONPATH.
"""

import os
import signal
import time

from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module(force=True)
class StopStorageHook(Hook):
    def __init__(self, epoch: int = 1):
        self.epoch = epoch

    def before_train_epoch(self, runner):
        if runner.epoch != self.epoch:
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
