"""Starting the processes of a distributed run: the launchers' environments, and DDP on CPU-only torch.

Runs that outgrow one process use PyTorch DDP through mmengine's launchers (``torchrun`` for
``--launcher pytorch``, ``srun`` for ``--launcher slurm``). mmengine's launchers assume CUDA; on
CPU-only torch ``prepare_cpu_distributed`` starts the gloo process group itself.
"""

from __future__ import annotations

import os

from ..errors import ConfigError

__all__ = ["require_launcher_env", "slurm_to_torch_env", "prepare_cpu_distributed", "end_process_group"]


def require_launcher_env(what: str, how: str) -> None:
    """Raise a ConfigError unless torchrun's environment (RANK, WORLD_SIZE, ...) is set."""
    missing = [v for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
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
