# Tiny RetinaNet-R18 for the kill -9 / --resume test: 3 epochs of a few 64 px batches, a checkpoint
# every epoch, random flips (so resuming must also restore the random state), no validation.
_base_ = './tiny_retinanet.py'

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    batch_size=2, num_workers=0,
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True),
    dataset=dict(deeplake_path='TRAIN', deeplake_query='SELECT * WHERE ROW_NUMBER() < 8',
                 pipeline=train_pipeline))
val_dataloader = None
val_cfg = None
val_evaluator = None
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=3)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True))
log_processor = dict(by_epoch=True, window_size=1)  # log each iteration's own loss
randomness = dict(seed=0, deterministic=True)
