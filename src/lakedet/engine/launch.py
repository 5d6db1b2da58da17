"""Starting the processes of a distributed run: the launchers' environments, ranks spawned from a
plain process, and DDP on CPU-only torch.

Runs that outgrow one process use PyTorch DDP through mmengine's launchers (``torchrun`` for
``--launcher pytorch``, ``srun`` for ``--launcher slurm``). mmengine's launchers assume CUDA; on
CPU-only torch ``prepare_cpu_distributed`` starts the gloo process group itself. A plain
``python train.py`` calling ``train_detector(..., distributed=True)`` has no launcher: lakedet
starts the ranks itself (``spawn_world``, ``spawn_ranks``), each with torchrun's environment.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import socket
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import ConfigError, RankError

__all__ = ["require_launcher_env", "launcher_env_missing", "join_launcher_world", "slurm_to_torch_env", "prepare_cpu_distributed",
           "end_process_group", "spawn_world", "pack_for_ranks", "unpack_in_rank", "spawn_ranks"]

logger = logging.getLogger("lakedet")

#: What torchrun sets in every process it starts (and ``spawn_ranks`` in every rank it starts).
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launcher_env_missing() -> list[str]:
    """The torchrun variables (``LAUNCHER_VARS``) missing from the environment; empty under a launcher."""
    return [v for v in LAUNCHER_VARS if v not in os.environ]


def require_launcher_env(what: str, how: str) -> None:
    """Raise a ConfigError unless torchrun's environment (RANK, WORLD_SIZE, ...) is set."""
    missing = launcher_env_missing()
    if missing:
        raise ConfigError(f"{what}, but the launcher environment is missing {missing}; start it with: {how}")


def slurm_to_torch_env() -> None:
    """Set torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT) from srun's.

    As mmengine's slurm launcher does: ``SLURM_PROCID`` -> RANK, ``SLURM_NTASKS`` -> WORLD_SIZE,
    ``SLURM_LOCALID`` -> LOCAL_RANK (0 when unset), MASTER_PORT kept or 29500, MASTER_ADDR kept or
    the first host of ``SLURM_NODELIST`` (``scontrol show hostname``; a single plain host name is
    used as it is when ``scontrol`` is missing).

    Raises:
        ConfigError: a SLURM_* variable is missing, or the master host cannot be found.
    """
    import shutil
    import subprocess

    missing = [v for v in ("SLURM_PROCID", "SLURM_NTASKS", "SLURM_NODELIST") if v not in os.environ]
    if missing:
        raise ConfigError(f"--launcher slurm, but the environment is missing {missing}; start it with: "
                          "srun -n N python -m lakedet train CONFIG --launcher slurm")
    nodes = os.environ["SLURM_NODELIST"]
    if "MASTER_ADDR" not in os.environ:
        if shutil.which("scontrol"):
            hosts = subprocess.run(["scontrol", "show", "hostname", nodes], capture_output=True, text=True).stdout
            os.environ["MASTER_ADDR"] = hosts.split()[0] if hosts.split() else ""
        elif not any(c in nodes for c in "[],"):
            os.environ["MASTER_ADDR"] = nodes
        if not os.environ.get("MASTER_ADDR"):
            raise ConfigError(f"--launcher slurm: cannot tell the master host from SLURM_NODELIST={nodes!r} "
                              "(no scontrol here); set MASTER_ADDR to the first node's address")
    os.environ.setdefault("MASTER_PORT", "29500")
    os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
    os.environ["RANK"] = os.environ["SLURM_PROCID"]
    os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")


def join_launcher_world() -> bool:
    """True when a launcher started this process as one rank of its world: torchrun's variables
    are set, or ``srun`` started several tasks in this job step (``SLURM_STEP_NUM_TASKS`` > 1,
    which srun sets and an sbatch script's own shell does not); srun's variables are then mapped to
    torchrun's (``slurm_to_torch_env``)."""
    if not launcher_env_missing():
        return True
    try:
        step_tasks = int(os.environ.get("SLURM_STEP_NUM_TASKS") or 1)
    except ValueError:
        step_tasks = 1
    if step_tasks > 1 and "SLURM_PROCID" in os.environ:
        slurm_to_torch_env()
        return True
    return False


def prepare_cpu_distributed(cfg) -> None:
    """Let ``--launcher pytorch`` (torchrun) and ``--launcher slurm`` (srun) run on CPU-only torch.

    mmengine's launchers call ``torch.cuda.set_device`` and wrap the model with
    ``device_ids=[LOCAL_RANK]``; both fail without CUDA. lakedet starts the gloo process group
    itself from the launcher's environment (mmengine then skips its own start) and wraps with
    ``device_ids=None``.
    """
    import torch

    launcher = cfg.get("launcher", "none")
    if launcher not in ("pytorch", "slurm") or torch.cuda.is_available():
        return
    if launcher == "slurm":
        slurm_to_torch_env()
    require_launcher_env("--launcher pytorch", "torchrun --nproc_per_node N -m lakedet train CONFIG --launcher pytorch")
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="gloo", init_method="env://")
    wrapper = dict(cfg.get("model_wrapper_cfg") or dict(type="MMDistributedDataParallel"))
    wrapper.setdefault("device_ids", None)
    wrapper.setdefault("broadcast_buffers", False)
    cfg.model_wrapper_cfg = wrapper


def end_process_group() -> None:
    """Tear down the process group, if one is up (gloo aborts at interpreter exit when it is left up)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


# --- ranks spawned from a plain process (train_detector(..., distributed=True) without a launcher) ---

def spawn_world(cfg: Mapping, nprocs: int | None) -> tuple[int, str | None]:
    """How many ranks to spawn, and the ``CUDA_VISIBLE_DEVICES`` they get (None on CPU).

    With CUDA: one rank per id in ``cfg.gpu_ids`` (indices among the GPUs this process sees), all
    of them when the config has none, the first ``nprocs`` when only ``nprocs`` is given. Every
    rank sees exactly those GPUs, in that order, so rank ``i`` trains on ``gpu_ids[i]``
    (mmengine's launcher takes device ``LOCAL_RANK``). Without CUDA: ``nprocs`` CPU ranks, which
    the caller must state.

    Raises:
        ConfigError: no rank count can be told, or ``gpu_ids`` / ``nprocs`` ask for GPUs that are
            not there or disagree.
    """
    import torch

    if nprocs is not None and (isinstance(nprocs, bool) or not isinstance(nprocs, int) or nprocs < 1):
        raise ConfigError(f"nprocs={nprocs!r}: the number of ranks to spawn must be a whole number >= 1")
    gpu_ids = cfg.get("gpu_ids")
    gpu_ids = None if gpu_ids is None else list(gpu_ids)
    if not torch.cuda.is_available():
        if gpu_ids:
            raise ConfigError(f"distributed=True with cfg.gpu_ids={gpu_ids}, but this process sees no CUDA device "
                              "(CPU-only torch, or CUDA_VISIBLE_DEVICES is empty); for CPU ranks drop gpu_ids and "
                              "pass train_detector(..., distributed=True, nprocs=N)")
        if nprocs is None:
            raise ConfigError("distributed=True on a machine without a CUDA device: state the number of CPU ranks, "
                              "train_detector(..., distributed=True, nprocs=2), or start the script with "
                              "torchrun --nproc_per_node N script.py")
        return nprocs, None
    count = torch.cuda.device_count()
    if gpu_ids is None:
        gpu_ids = list(range(nprocs if nprocs is not None else count))
    elif nprocs is not None and nprocs != len(gpu_ids):
        raise ConfigError(f"nprocs={nprocs} but cfg.gpu_ids={gpu_ids} asks for {len(gpu_ids)} ranks (one per GPU); "
                          "give one of them")
    bad = [i for i in gpu_ids if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < count]
    if not gpu_ids or bad or len(set(gpu_ids)) != len(gpu_ids):
        raise ConfigError(f"cfg.gpu_ids={gpu_ids}: expected distinct GPU indices in 0..{count - 1} "
                          f"(this process sees {count} CUDA device(s)), at least one")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [v.strip() for v in visible.split(",")] if visible else [str(i) for i in range(count)]
    return len(gpu_ids), ",".join(names[i] for i in gpu_ids)


#: What to do instead when one of ``train_detector``'s arguments cannot be sent to spawned ranks.
_UNSENDABLE_HINTS = {
    "cfg": "pass the config as it was loaded: secrets written in it as values are hidden again in every rank "
           "(a config holding lakedet's Secret objects stays in the process that made it)",
    "ds_train": "give the data in the config instead (deeplake_path, with deeplake_query for a view) or a view "
                "that can be pickled (deeplake.open_read_only(path), ds.query(...)); slices such as ds[a:b] cannot",
}
_UNSENDABLE_HINTS["ds_val"] = _UNSENDABLE_HINTS["ds_train"]


def pack_for_ranks(parts: Mapping[str, Any]) -> bytes:
    """``parts`` (train_detector's arguments; rank 0's trained weights on the way back) as bytes
    that ``unpack_in_rank`` loads.

    ``torch.save`` into memory: tensors travel as copies (each rank trains its own model, never
    storage shared with this process), and a rank loads them onto the CPU before it chooses its
    GPU. Nothing is written to a file.

    Raises:
        ConfigError: names the argument that cannot be pickled and what to pass instead.
    """
    import torch

    buffer = io.BytesIO()
    try:
        torch.save(dict(parts), buffer)
    except Exception as exc:
        name = next((k for k, v in parts.items() if not _picklable(v)), "an argument")
        hint = _UNSENDABLE_HINTS.get(name, "pass objects that can be pickled")
        raise ConfigError(f"distributed=True starts new processes, which get train_detector's {name} by pickling, "
                          f"and it cannot be pickled ({type(exc).__name__}: {exc}); {hint}, or start the ranks with "
                          "torchrun --nproc_per_node N script.py, where each process builds its own") from None
    return buffer.getvalue()


def _picklable(value: Any) -> bool:
    try:
        pickle.dumps(value)
        return True
    except Exception:
        return False


def unpack_in_rank(payload: bytes) -> dict:
    """What ``pack_for_ranks`` packed, tensors on the CPU."""
    import torch

    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=False)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the spawned ranks' rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def spawn_ranks(target: Callable[[bytes], Any], payload: bytes, world: int, cuda_visible: str | None) -> Any:
    """Run ``target(payload)`` in ``world`` new processes, ranks ``0..world-1`` of one DDP world on
    this machine; return what rank 0's call returned.

    Processes start with ``torch.multiprocessing``'s ``spawn`` (fresh interpreters: safe with CUDA
    and with Deep Lake's threads; each imports the caller's main module again, so a script must
    start its work under ``if __name__ == '__main__':``). Each rank gets torchrun's environment:
    ``RANK`` = ``LOCAL_RANK`` = its index, ``WORLD_SIZE`` = ``LOCAL_WORLD_SIZE`` = ``world``,
    ``MASTER_ADDR=127.0.0.1``, ``MASTER_PORT`` = a port free when the ranks start, and
    ``CUDA_VISIBLE_DEVICES=cuda_visible`` when given. Without ``OMP_NUM_THREADS`` set, a rank uses
    ``cpu_count // world`` threads (torchrun would use 1).

    Raises:
        RankError: a rank raised (the first to report: its exception type, message and
            traceback) or died (exit code or signal); the other ranks are then terminated (SIGTERM, SIGKILL after 30 s), so a rank
            blocked in a collective never waits for one that is gone.
    """
    import torch
    import torch.multiprocessing as mp

    # the arguments reach the ranks in memory shared with them (torch's tensor sharing: an fd, no
    # named file): what each new process is sent through its start-up pipe stays small, so a rank
    # that dies while starting (a script without the __main__ guard) cannot block this process
    shared = torch.frombuffer(bytearray(payload), dtype=torch.uint8).share_memory_()
    context = mp.get_context("spawn")
    reports = context.SimpleQueue()
    received: dict = {}
    reader = threading.Thread(target=_read_reports, args=(reports, received), daemon=True)
    reader.start()  # read as they come: a rank never blocks on a full pipe while this process waits for it
    port = free_port()
    logger.info("lakedet: distributed=True without a launcher: spawning %d rank(s) on 127.0.0.1:%d%s", world, port,
                f" (CUDA_VISIBLE_DEVICES={cuda_visible})" if cuda_visible is not None else " (CPU)")
    try:
        mp.start_processes(_rank_main, args=(target, shared, world, port, cuda_visible, reports), nprocs=world,
                           start_method="spawn")
    except (mp.ProcessExitedException, mp.ProcessRaisedException) as exc:
        reports.put(None)
        reader.join()
        raise _rank_error(exc, world, received) from None
    reports.put(None)
    reader.join()
    return received.get("result")


def _read_reports(reports, received: dict) -> None:
    while (report := reports.get()) is not None:
        kind, rank, value = report
        if kind == "result":
            received["result"] = pickle.loads(value)
        else:
            received.setdefault("errors", {})[rank] = value


def _rank_error(exc, world: int, received: dict) -> RankError:
    """The error of the rank that failed first: the first to report one (the others often fail
    because it is gone), else the one torch saw exit."""
    errors = received.get("errors", {})  # in the order they arrived
    rank, code = (next(iter(errors)), 1) if errors else (exc.error_index, getattr(exc, "exit_code", 1))
    if rank in errors:
        kind, message, trace = errors[rank]
        text = f"rank {rank} of {world} failed: {kind}: {message}"
    elif code < 0:
        kind, trace = None, ""
        text = f"rank {rank} of {world} was killed by {getattr(exc, 'signal_name', code)} (out of memory?)"
    else:
        kind, trace = None, ""
        text = (f"rank {rank} of {world} exited with code {code} before it could report an error (see its "
                "output above); a script that calls train_detector(distributed=True) must start its work under "
                "`if __name__ == '__main__':`, as every spawned rank imports it again")
    others = [f"rank {r}: {e[0]}: {e[1]}" for r, e in sorted(errors.items()) if r != rank]
    if others:
        text += "\n(then " + "; ".join(others) + ")"
    if trace:
        text += f"\n\nrank {rank}'s traceback:\n{trace}"
    return RankError(text, rank=rank, exit_code=code, error_type=kind)


def _rank_main(rank: int, target, payload, world: int, port: int, cuda_visible: str | None, reports) -> None:
    """One spawned rank: torchrun's environment, then ``target(payload)``; reports to the parent."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    if cuda_visible is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = cuda_visible  # before anything touches CUDA in this process
    import multiprocessing

    # spawn left its own start method set here; unset, as under torchrun, mmengine starts DataLoader
    # workers with its env_cfg.mp_cfg.mp_start_method without a warning
    multiprocessing.set_start_method(None, force=True)
    try:
        import torch

        if cuda_visible is not None and torch.cuda.is_initialized():
            raise RuntimeError(f"CUDA was started in rank {rank} before lakedet could give it its GPU (the script "
                               "touches CUDA when it is imported, outside `if __name__ == '__main__':`, which every "
                               "spawned rank runs again); move that code under the guard")
        if "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
        value = target(payload.numpy().tobytes())
        if rank == 0:
            reports.put(("result", rank, pickle.dumps(value)))
    except Exception as exc:  # reported to the parent, which raises it naming this rank
        reports.put(("error", rank, (type(exc).__name__, str(exc), traceback.format_exc())))
        sys.exit(1)
