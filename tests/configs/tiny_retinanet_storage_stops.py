# tiny_retinanet.py by epochs (2 workers, a new pair each epoch) with a checkpoint after every
# epoch; stop_storage.StopStorageHook kills the S3 server after the second iteration of the second
# epoch, while the workers are reading (prefetching 2 batches each: rows beyond those must fail).
_base_ = './tiny_retinanet.py'
custom_imports = dict(imports=['lakedet', 'stop_storage'], allow_failed_imports=False)

train_dataloader = dict(
    batch_size=2, num_workers=2, persistent_workers=False,
    # rows one by one: in the chunk-aware order (the default for S3) this 24-row dataset is one chunk,
    # read ahead whole in epoch 1, and a server that dies in epoch 2 is never asked again
    sampler=dict(_delete_=True, type='DefaultSampler', shuffle=True, order='permutation'))
train_cfg = dict(_delete_=True, type='EpochBasedTrainLoop', max_epochs=3, val_interval=100)
custom_hooks = [dict(type='StopStorageHook', epoch=1, after_iter=2)]
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, by_epoch=True))
log_processor = dict(by_epoch=True)
