"""How DataLoader workers over remote Deep Lake data start: ``forkserver``, without the user's script.

``deeplake`` replaces ``os.fork`` with a version that first joins its native I/O threads; while
one of them waits on storage that stopped answering, the fork waits with it
(``tests/test_fork_safety.py``). ``worker_context()`` is a ``forkserver`` multiprocessing context:
workers are forked from a server process that imported lakedet and MMDetection once
(``set_forkserver_preload``) and never did Deep Lake I/O; each worker reopens its dataset
(``DeepLakeDetDataset.__getstate__``).

Python's forkserver (like spawn) also imports the parent's ``__main__`` script in every child.
The seed's own example is a script that calls ``train_detector`` at the top level without an
``if __name__ == "__main__"`` guard, which every worker would run again; these workers leave the
script out. They need only importable modules (lakedet, MMDetection, what ``custom_imports``
names): a transform class defined in the script itself cannot be used by such workers.
"""

from __future__ import annotations

import threading
from multiprocessing import context, popen_forkserver, spawn

__all__ = ["worker_context", "WorkerContext"]

_launching = threading.Lock()


def _without_main_script(get_preparation_data):
    def prepared(name):
        data = get_preparation_data(name)
        data.pop("init_main_from_path", None)
        return data

    return prepared


class _Popen(popen_forkserver.Popen):
    def _launch(self, process_obj):
        with _launching:  # the preparation data is built by a module function: swap it for this launch
            original = spawn.get_preparation_data
            spawn.get_preparation_data = _without_main_script(original)
            try:
                super()._launch(process_obj)
            finally:
                spawn.get_preparation_data = original


class WorkerProcess(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _Popen(process_obj)


class WorkerContext(context.ForkServerContext):
    """``forkserver`` whose children do not import the parent's main script."""

    Process = WorkerProcess

    def __deepcopy__(self, memo):  # configs are deep-copied; one context serves them all
        return self

    def __reduce__(self):
        return (worker_context, ())

    def __repr__(self) -> str:  # how a dumped config shows it (mmengine formats configs from reprs)
        return "'forkserver'"


_CONTEXT: WorkerContext | None = None


def worker_context() -> WorkerContext:
    """The context (one per process), its server preloading lakedet's dataset and sampler."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = WorkerContext()
        _CONTEXT.set_forkserver_preload(["lakedet.data.dataset", "lakedet.data.sampler"])
    return _CONTEXT
