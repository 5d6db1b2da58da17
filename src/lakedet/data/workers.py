"""How DataLoader workers over remote Deep Lake data start: from a fork server, without the user's script.

``deeplake`` replaces ``os.fork`` with a version that first joins its native I/O threads; while
one of them waits on storage that stopped answering, the fork waits with it
(``tests/test_fork_safety.py``). So workers over remote data are never forked from the training
process once it has used Deep Lake: ``worker_context()`` is a ``forkserver`` multiprocessing
context whose server process never does Deep Lake I/O, and each worker reopens its dataset
(``DeepLakeDetDataset.__getstate__``). The server, one per process and reused by every
DataLoader, is either

* a **fork of this process made before Deep Lake was imported** (``start_worker_server``, called
  when a remote dataset is about to be opened): no Deep Lake thread exists yet, the fork is plain,
  and the server already holds torch, MMDetection and lakedet, so a worker starts in a fork; or
* otherwise (Deep Lake was imported first, e.g. by the caller who opened a dataset object) a
  fresh interpreter that imports lakedet's dataset and sampler modules, as Python's forkserver
  does: 3-5 s on 2 cores before the first worker of the process starts.

Python's forkserver (like spawn) also imports the parent's ``__main__`` script in every child.
The seed's own example is a script that calls ``train_detector`` at the top level without an
``if __name__ == "__main__"`` guard, which every worker would run again; these workers leave the
script out. A fresh-interpreter server's workers need only importable modules (lakedet,
MMDetection, what ``custom_imports`` names): a transform class defined in the script itself
cannot be used by them.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import threading
from multiprocessing import connection, context, forkserver, popen_forkserver, reduction, resource_tracker, spawn, util

__all__ = ["worker_context", "WorkerContext", "start_worker_server", "worker_server_forked"]

#: what a fresh-interpreter server imports before it forks workers
PRELOAD = ["lakedet.data.dataset", "lakedet.data.sampler"]


class _Server(forkserver.ForkServer):
    """Python's fork server, which can also be started as a fork of this process (``fork_now``)."""

    def __init__(self):
        super().__init__()
        self.set_forkserver_preload(list(PRELOAD))
        self.forked = False  # the running server is a fork of this process

    def fork_now(self) -> bool:
        """Start the server as a fork of this process, unless one runs or Deep Lake is imported
        (its threads may then be waiting on storage). Returns whether a forked server runs."""
        with self._lock:
            if self._forkserver_pid is not None and not os.waitpid(self._forkserver_pid, os.WNOHANG)[0]:
                return self.forked
            if "deeplake" in sys.modules:
                return False
            resource_tracker.ensure_running()
            for stream in (sys.stdout, sys.stderr):  # what they hold would be written again by the children
                try:
                    stream.flush()
                except (AttributeError, ValueError):
                    pass
            with socket.socket(socket.AF_UNIX) as listener:
                address = connection.arbitrary_address("AF_UNIX")
                listener.bind(address)
                if not util.is_abstract_socket_namespace(address):
                    os.chmod(address, 0o600)
                listener.listen()
                alive_r, alive_w = os.pipe()  # the server stops when every holder of alive_w is gone
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        os.close(alive_w)
                        self._lock = threading.Lock()  # held by the forking thread: not in this process
                        self._forkserver_pid = None
                        forkserver.main(listener.fileno(), alive_r, [])
                        code = 0
                    except SystemExit:
                        code = 0
                    finally:
                        os._exit(code)
                os.close(alive_r)
            self._forkserver_address, self._forkserver_alive_fd, self._forkserver_pid = address, alive_w, pid
            self.forked = True
            return True

    def ensure_running(self) -> None:
        with self._lock:
            running = self._forkserver_pid is not None and not os.waitpid(self._forkserver_pid, os.WNOHANG)[0]
        if not running:
            self.forked = False
        super().ensure_running()


_SERVER = _Server()


def start_worker_server() -> bool:
    """Start this process's worker server now as a fork of it, if Deep Lake is not imported yet
    (call it before opening remote data). Cheap (one fork); returns whether a forked server runs.
    Inside a DataLoader worker nothing is started."""
    import torch.utils.data

    if torch.utils.data.get_worker_info() is not None:
        return False
    return _SERVER.fork_now()


def worker_server_forked() -> bool:
    """Whether this process's worker server runs as a fork of it (False: none yet, or a fresh interpreter)."""
    return _SERVER.forked and _SERVER._forkserver_pid is not None


class _Popen(popen_forkserver.Popen):
    """``popen_forkserver.Popen`` through lakedet's server, without the main script."""

    def _launch(self, process_obj):
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        context.set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            context.set_spawning_popen(None)
        self.sentinel, w = _SERVER.connect_to_new_process(self._fds)
        parent_w = os.dup(w)  # the child's sentinel of its parent
        self.finalizer = util.Finalize(self, util.close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class WorkerProcess(context.ForkServerProcess):
    @staticmethod
    def _Popen(process_obj):
        return _Popen(process_obj)


class WorkerContext(context.ForkServerContext):
    """``forkserver`` through lakedet's worker server, whose children do not import the parent's main script."""

    Process = WorkerProcess

    def __deepcopy__(self, memo):  # configs are deep-copied; one context serves them all
        return self

    def __reduce__(self):
        return (worker_context, ())

    def __repr__(self) -> str:  # how a dumped config shows it (mmengine formats configs from reprs)
        return "'forkserver'"


_CONTEXT: WorkerContext | None = None


def worker_context() -> WorkerContext:
    """The context (one per process); its server is started on first use if ``start_worker_server``
    has not started it."""
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = WorkerContext()
    return _CONTEXT
