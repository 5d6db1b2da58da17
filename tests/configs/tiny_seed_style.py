# The tiny RetinaNet of tiny_retinanet.py, with its data written the seed's (MMDetection 2.x) way.
_base_ = './tiny_retinanet.py'

img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
data = dict(
    samples_per_gpu=2, workers_per_gpu=0,
    train=dict(
        deeplake_path='TRAIN',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', with_bbox=True),
            dict(type='Resize', img_scale=(64, 64), keep_ratio=True),
            dict(type='RandomFlip', flip_ratio=0.5),
            dict(type='Normalize', **img_norm_cfg),
            dict(type='Pad', size_divisor=32),
            dict(type='DefaultFormatBundle'),
            dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels']),
        ]),
    val=dict(
        deeplake_path='VAL',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='MultiScaleFlipAug', img_scale=(64, 64), flip=False, transforms=[
                dict(type='Resize', keep_ratio=True),
                dict(type='Normalize', **img_norm_cfg),
                dict(type='Pad', size_divisor=32),
                dict(type='ImageToTensor', keys=['img']),
                dict(type='Collect', keys=['img']),
            ]),
        ]),
)
evaluation = dict(metric=['bbox'], interval=2)
runner = dict(type='IterBasedRunner', max_iters=2)
deeplake_metrics_format = 'COCO'
