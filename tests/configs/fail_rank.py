"""Test plug-in, not a config: ``FailOnRankHook`` raises on one rank after a given iteration, while
the other ranks go on into the next step's gradient all-reduce (where they would wait forever).
Reach it with ``custom_imports = dict(imports=['fail_rank'])`` and ``tests/configs`` on PYTHONPATH.
"""

from mmengine.hooks import Hook
from mmdet.registry import HOOKS


@HOOKS.register_module(force=True)
class FailOnRankHook(Hook):
    def __init__(self, rank: int = 1, after_iter: int = 1):
        self.rank, self.after_iter = rank, after_iter

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.rank == self.rank and runner.iter + 1 >= self.after_iter:
            raise RuntimeError(f"injected failure on rank {self.rank} after iteration {runner.iter + 1}")
