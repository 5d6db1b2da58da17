# MMDetection's own Mask R-CNN config, with only its datasets swapped for Deep Lake ones.
_base_ = 'mmdet::mask_rcnn/mask-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='TRAIN'))
val_dataloader = dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='VAL'))
test_dataloader = val_dataloader
