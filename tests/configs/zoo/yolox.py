# MMDetection's own YOLOX-S config (Mosaic + MixUp in a MultiImageMixDataset), with only its datasets
# swapped for Deep Lake ones.
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'
custom_imports = dict(imports=['lakedet'], allow_failed_imports=False)

train_dataloader = dict(dataset=dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='TRAIN')))
val_dataloader = dict(dataset=dict(type='DeepLakeDetDataset', deeplake_path='VAL'))
test_dataloader = val_dataloader
