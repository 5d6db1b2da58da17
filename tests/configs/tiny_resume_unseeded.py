# tiny_resume.py without a seed (mmengine draws one) and with validation after every epoch: resuming
# must continue with the drawn seed, and validation must not move the training's random streams.
_base_ = './tiny_resume.py'

val_dataloader = dict(
    _delete_=True,
    batch_size=2, num_workers=0, persistent_workers=False,
    dataset=dict(type='DeepLakeDetDataset', deeplake_path='TRAIN', test_mode=True,
                 deeplake_query='SELECT * WHERE ROW_NUMBER() < 4',
                 pipeline=[dict(type='LoadImageFromFile'), dict(type='Resize', scale=(64, 64), keep_ratio=True),
                           dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                                                                 'scale_factor'))]))
val_cfg = dict(_delete_=True, type='ValLoop')
val_evaluator = dict(_delete_=True, type='DeepLakeCocoMetric', metric='bbox')
train_cfg = dict(val_interval=1)
randomness = dict(seed=None, deterministic=True)
