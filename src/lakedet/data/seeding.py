"""Random streams and threads while samples are prepared.

* ``seed_sample``: each sample's Python, NumPy and torch draws are seeded from
  ``(seed, epoch, rank, index)``, so a sample's augmentations do not depend on which DataLoader
  worker prepares it, nor on a resume;
* ``get_rng_states`` / ``set_rng_states``: the global random states as types
  ``torch.load(weights_only=True)`` accepts (checkpoints store them), and ``kept_random_states``;
* ``single_threaded``: torch runs single-threaded while samples are prepared.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np

__all__ = ["seed_sample", "get_rng_states", "set_rng_states", "kept_random_states", "in_worker", "single_threaded"]


def seed_sample(seed: int, epoch: int, rank: int, idx: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU) global random streams for one sample, from a hash
    of ``(seed, epoch, rank, idx)``: about 15 us (``torch.manual_seed``, which also seeds every
    accelerator, took 0.2-1 ms)."""
    import hashlib
    import random

    import torch

    digest = hashlib.blake2b(b"%d,%d,%d,%d" % (seed, epoch, rank, idx), digest_size=4).digest()
    value = int.from_bytes(digest, "little")
    random.seed(value)
    np.random.seed(value)
    torch.default_generator.manual_seed(value)


def get_rng_states() -> dict:
    """The Python, NumPy and torch (CPU, and CUDA when present) random states, as types that
    ``torch.load(weights_only=True)`` accepts."""
    import random

    import torch

    kind, key, pos, has_gauss, gauss = np.random.get_state()
    states = {"python": random.getstate(),
              "numpy": {"kind": kind, "key": torch.from_numpy(key.astype(np.int64)), "pos": int(pos),
                        "has_gauss": int(has_gauss), "gauss": float(gauss)},
              "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    """Restore what ``get_rng_states`` returned (keys it lacks are left as they are)."""
    import random

    import torch

    if "python" in states:
        version, internal, gauss = states["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in states:
        n = states["numpy"]
        np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "torch" in states:
        torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


@contextlib.contextmanager
def kept_random_states(keep: bool):
    """Restore the random states afterwards (``keep``): in the training process per-sample seeding
    must not move the streams the model draws from."""
    if not keep:
        yield
        return
    states = get_rng_states()
    try:
        yield
    finally:
        set_rng_states(states)


def in_worker() -> bool:
    """True inside a PyTorch DataLoader worker process."""
    import torch.utils.data

    return torch.utils.data.get_worker_info() is not None


_threads_limited_in: int | None = None


@contextlib.contextmanager
def single_threaded():
    """Run torch single-threaded while preparing samples.

    Inside a DataLoader worker this is set once for the process: each worker already is one of
    several processes sharing the cores, and their own thread pools would only compete
    (over-subscription; measured: torch's HWC->CHW copy in ``PackDetInputs`` takes 2.7 ms with two
    threads and 0.3 ms with one on 2 cores). In the main process (``num_workers=0``) the settings
    are restored afterwards, since the model runs there too.

    OpenCV's thread count is left as the main process set it (MMDetection's configs set
    ``env_cfg.mp_cfg.opencv_num_threads=0`` there, which forked workers inherit): re-configuring
    OpenCV's thread pool in a forked worker can wait forever for pool threads that exist only in
    the parent (``tests/test_fork_safety.py``).
    """
    global _threads_limited_in
    import torch

    if in_worker():
        if _threads_limited_in != os.getpid():
            _threads_limited_in = os.getpid()
            torch.set_num_threads(1)
        yield
        return
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(torch_threads)
