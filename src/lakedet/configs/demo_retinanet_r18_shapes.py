# lakedet demo: RetinaNet with a ResNet-18 backbone, trained from scratch (no pretrained weights
# can be fetched offline) on lakedet's synthetic shapes, streamed from Deep Lake.
# `lakedet demo` builds the datasets and fills in the two paths; to run it yourself:
#   lakedet train src/lakedet/configs/demo_retinanet_r18_shapes.py \
#     --cfg-options train_dataloader.dataset.deeplake_path=PATH val_dataloader.dataset.deeplake_path=PATH
_base_ = 'mmdet::retinanet/retinanet_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)

train_path = 'demo-shapes-train'  # replaced by `lakedet demo`
val_path = 'demo-shapes-val'
image_size = 128
max_epochs = 12
batch_size = 8

model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(depth=18, frozen_stages=-1, norm_eval=False, init_cfg=None),
    # a slimmer neck and head than the zoo's 256 channels x 4 convs: 2.2x faster on CPU and
    # better here (single unseeded runs on 2 cores: bbox mAP 0.62 vs 0.40 after 12 epochs; the
    # seeded demo prints 0.516 on every run of this machine, see README)
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=128),
    bbox_head=dict(num_classes=3, in_channels=128, feat_channels=128, stacked_convs=2),
    test_cfg=dict(score_thr=0.05, max_per_img=20))

train_pipeline = [
    dict(type='LoadImageFromFile'),  # lakedet reads it from the Deep Lake row instead
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(image_size, image_size), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
]

train_dataloader = dict(
    batch_size=batch_size, num_workers=2, persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    batch_sampler=None,
    dataset=dict(_delete_=True, type='DeepLakeDetDataset', deeplake_path=train_path,
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=batch_size, num_workers=2, persistent_workers=False,
    dataset=dict(_delete_=True, type='DeepLakeDetDataset', deeplake_path=val_path,
                 test_mode=True, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='DeepLakeCocoMetric', metric='bbox', classwise=True)
test_evaluator = val_evaluator

train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=max_epochs, val_interval=max_epochs)
optim_wrapper = dict(
    _delete_=True, type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=0, end=max_epochs, eta_min=1e-5),
]
auto_scale_lr = dict(enable=False, base_batch_size=batch_size)
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=max_epochs, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=False, mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
               dist_cfg=dict(backend='gloo'))
randomness = dict(seed=0)
work_dir = 'work_dirs/demo'
