"""Checkpoints from anywhere load under torch's default ``weights_only=True`` once lakedet allow-lists
what mmengine saves: files written by plain mmengine / MMDetection (no lakedet hook involved), the
model zoo's layout, and lakedet's own; anything else a checkpoint asks for stays refused."""

from collections import OrderedDict

import numpy as np
import pytest
import torch

from lakedet.engine.checkpoints import allow_mmengine_checkpoints

pytestmark = pytest.mark.timeout(120)


class _Toy(torch.nn.Module):
    """The smallest model mmengine's Runner trains."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 1)
        from mmengine.model import BaseDataPreprocessor

        self.data_preprocessor = BaseDataPreprocessor()

    def forward(self, inputs, mode="loss", **kwargs):
        return {"loss": self.linear(torch.stack(inputs)).pow(2).mean()}

    def train_step(self, data, optim_wrapper):
        loss = self(data)["loss"]
        optim_wrapper.update_params(loss)
        return {"loss": loss}


def _plain_mmengine_checkpoint(work_dir) -> str:
    """Train 2 iterations with a plain mmengine Runner (no lakedet hooks) and return its checkpoint."""
    from mmengine.runner import Runner

    runner = Runner(model=_Toy(), work_dir=str(work_dir),
                    train_dataloader=dict(dataset=[torch.ones(2)] * 4, sampler=dict(type="DefaultSampler", shuffle=False),
                                          batch_size=2, collate_fn=dict(type="pseudo_collate")),
                    train_cfg=dict(by_epoch=False, max_iters=2), optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
                    default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=2, by_epoch=False)),
                    randomness=dict(seed=3), default_scope="mmdet")
    runner.train()
    return str(work_dir / "iter_2.pth")


def test_a_plain_mmengine_checkpoint_loads_with_weights_only(tmp_path):
    path = _plain_mmengine_checkpoint(tmp_path)
    raw = torch.load(path, map_location="cpu", weights_only=False)  # what the file holds: HistoryBuffers
    assert type(raw["message_hub"]["log_scalars"]["train/loss"]).__name__ == "HistoryBuffer"
    allow_mmengine_checkpoints()
    checkpoint = torch.load(path, map_location="cpu")  # torch's default: weights_only=True
    loss = checkpoint["message_hub"]["log_scalars"]["train/loss"]
    assert loss.mean() == raw["message_hub"]["log_scalars"]["train/loss"].mean()
    assert checkpoint["meta"]["iter"] == 2 and checkpoint["meta"]["seed"] == 3
    # and through mmengine's own loader, the one tools/test.py and load_from use
    from mmengine.runner import load_checkpoint

    model = _Toy()
    load_checkpoint(model, path, map_location="cpu")
    assert torch.equal(model.linear.weight, checkpoint["state_dict"]["linear.weight"])


def test_a_zoo_structured_checkpoint_loads_with_weights_only(tmp_path):
    from mmengine.logging import HistoryBuffer

    buffer = HistoryBuffer()
    for value in (np.float64(0.9), 0.7):  # np.float64 is a float subclass
        buffer.update(value)
    zoo = {  # the layout of MMDetection's released .pth files (state_dict + meta + message hub)
        "meta": {"mmdet_version": "3.0.0rc5", "mmengine_version": "0.4.0", "epoch": 12, "iter": 87960,
                 "seed": np.int64(3447), "experiment_name": "faster-rcnn_r50_fpn_1x_coco",
                 "time": "20220523_155420", "cfg": "model = dict(type='FasterRCNN')",
                 "dataset_meta": {"classes": ("person", "bicycle"), "palette": [(220, 20, 60), (119, 11, 32)]},
                 "hook_msgs": {"last_ckpt": "work_dirs/epoch_12.pth", "best_score": np.float64(0.374)}},
        "state_dict": OrderedDict(("backbone.conv1.weight", torch.zeros(2, 3, 1, 1)) for _ in range(1)),
        "message_hub": {"log_scalars": {"train/loss": buffer}, "runtime_info": {"epoch": 12, "iter": 87960},
                        "resumed_keys": {"epoch": True}},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.02, "momentum": 0.9, "params": [0]}]},
        "param_schedulers": [{"base_lrs": [0.02], "last_step": 12, "milestones": {8: 1, 11: 1}}],
    }
    path = tmp_path / "faster_rcnn_r50_fpn_1x_coco.pth"
    torch.save(zoo, path)
    allow_mmengine_checkpoints()
    loaded = torch.load(path, map_location="cpu")
    assert loaded["meta"]["hook_msgs"]["best_score"] == pytest.approx(0.374)
    assert loaded["message_hub"]["log_scalars"]["train/loss"].mean() == pytest.approx(0.8)
    assert loaded["meta"]["dataset_meta"]["classes"] == ("person", "bicycle")


def test_other_getattr_calls_stay_refused(tmp_path):
    from mmengine.logging import HistoryBuffer

    class Sneaky:
        def __reduce__(self):
            return getattr, (HistoryBuffer, "__init__")

    torch.save({"x": Sneaky()}, tmp_path / "sneaky.pth")
    torch.save({"x": getattr}, tmp_path / "bare.pth")
    allow_mmengine_checkpoints()
    with pytest.raises(Exception, match="only mmengine's HistoryBuffer statistics are allowed"):
        torch.load(tmp_path / "sneaky.pth")
    # builtins.getattr itself is the stand-in, not Python's getattr
    assert torch.load(tmp_path / "bare.pth")["x"] is not getattr


def test_buffers_of_earlier_lakedet_checkpoints_are_decoded():
    from lakedet.engine.checkpoints import BUFFER_TAG, decode_buffers

    old = {"train/loss": {BUFFER_TAG: True, "log_history": np.array([1.0, 3.0]), "count_history": np.array([1, 1]),
                          "max_length": 10}, "other": 5}
    decoded = decode_buffers(old)
    assert decoded["train/loss"].mean() == 2.0 and decoded["other"] == 5
