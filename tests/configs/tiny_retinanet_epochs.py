# tiny_retinanet.py trained by epochs through DefaultSampler (lakedet swaps in ShardedRowSampler),
# 2 DataLoader workers, every row read recorded by record_rows.RecordRow (tests/configs on PYTHONPATH).
_base_ = './tiny_retinanet.py'
custom_imports = dict(imports=['lakedet', 'record_rows'], allow_failed_imports=False)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='RecordRow'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=False,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True, seed=7),
    dataset=dict(pipeline=train_pipeline))
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=2, val_interval=100)
custom_hooks = [dict(type='RecordEpochHook')]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=100, by_epoch=True, save_last=False))
log_processor = dict(by_epoch=True)
