# MMDetection's own DINO config, with only its datasets swapped for Deep Lake ones.
_base_ = 'mmdet::dino/dino-4scale_r50_8xb2-12e_coco.py'
custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='TRAIN'))
val_dataloader = dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='VAL'))
test_dataloader = val_dataloader
