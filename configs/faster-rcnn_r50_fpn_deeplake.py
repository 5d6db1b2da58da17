# MMDetection 3's Faster R-CNN config, unchanged except for the datasets (Deep Lake instead of COCO
# files) and the head's class count. Its data: `lakedet demo --examples-data data` writes
# data/shapes-train and data/shapes-val (3 classes); then `lakedet train
# configs/faster-rcnn_r50_fpn_deeplake.py` runs it as written. Offline, add
# `--cfg-options model.backbone.init_cfg=None` (no ImageNet weights). For your data: the paths, and
# num_classes = your class count.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)

train_dataloader = dict(
    dataset=dict(_delete_=True, type='DeepLakeDetDataset', deeplake_path='data/shapes-train',
                 filter_cfg=dict(filter_empty_gt=True, min_size=32),
                 pipeline={{_base_.train_pipeline}}))
val_dataloader = dict(
    dataset=dict(_delete_=True, type='DeepLakeDetDataset', deeplake_path='data/shapes-val',
                 test_mode=True, pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader
model = dict(roi_head=dict(bbox_head=dict(num_classes=3)))
