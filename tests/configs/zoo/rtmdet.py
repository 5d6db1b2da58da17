# MMDetection's own RTMDet-tiny config, with only its datasets swapped for Deep Lake ones.
_base_ = 'mmdet::rtmdet/rtmdet_tiny_8xb32-300e_coco.py'
custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='TRAIN'))
val_dataloader = dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='VAL'))
test_dataloader = val_dataloader
