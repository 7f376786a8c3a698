"""Make a multi-process CPU launch real DDP, or refuse it with the fix.

With transformers 5 and accelerate 1.x, ``torchrun --nproc_per_node 2`` on a machine without a GPU starts two
independent runs of world size 1 that write the same folder, unless the script gets ``--use_cpu true``; with only
``--ddp_backend gloo`` the ranks split the data but never sync their gradients. ``accelerate launch --cpu
--num_processes 2`` (or a ``MULTI_CPU`` config without mpirun) starts a single process. ``choose_ddp_backend``
is called from ``ToolkitTrainingArguments.__post_init__`` before transformers sets up the process group.
"""

from __future__ import annotations

import os

CPU_BACKENDS = ("gloo", "mpi")
WORLD_SIZE_VARS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")  # as accelerate reads
CPU_DDP_FIX = ("use `torchrun --nproc_per_node N` or `accelerate launch --config_file "
               "recipes/accelerate_configs/cpu_ddp.yaml` (without --cpu)")


def launched_world_size(env=None) -> int:
    """The number of processes the launcher says it started (1 when none did)."""
    env = os.environ if env is None else env
    for name in WORLD_SIZE_VARS:
        value = env.get(name, "").strip()
        if value.isdigit():
            return int(value)
    return 1


def has_ddp_device() -> bool:
    """Whether accelerate would train on an accelerator (CUDA, XPU, NPU, ...) rather than the CPU; MPS has no DDP."""
    import torch

    if torch.cuda.is_available():
        return True
    accelerator = getattr(torch, "accelerator", None)
    device = accelerator.current_accelerator(check_available=True) if accelerator is not None else None
    return device is not None and device.type not in ("cpu", "mps")


def accelerate_started_one_of_many(env=None) -> bool:
    """``accelerate launch`` was asked for several processes but ran the script once (its simple launcher).

    That launcher always sets ``ACCELERATE_DYNAMO_BACKEND`` and, only for ``--num_processes`` > 1 (or several
    machines), ``MASTER_ADDR``/``MASTER_PORT``, but never ``WORLD_SIZE``, ``RANK`` or ``LOCAL_RANK``.
    """
    env = os.environ if env is None else env
    return ("ACCELERATE_DYNAMO_BACKEND" in env and "MASTER_ADDR" in env and "MASTER_PORT" in env
            and "LOCAL_RANK" not in env and "RANK" not in env and launched_world_size(env) <= 1)


def choose_ddp_backend(ddp_backend: str | None, use_cpu: bool, env=None) -> tuple[str | None, bool]:
    """The ``(ddp_backend, use_cpu)`` to give ``TrainingArguments`` so that the launch trains one model.

    Started by a launcher (torchrun, accelerate, mpirun) and no accelerator (or ``use_cpu``): ``("gloo", True)``,
    which makes accelerate form one gloo group (``MULTI_CPU``). One process and no launcher: no backend (there any
    backend fails with "Default process group has not been initialized", unless the script made the group itself).
    Raises ValueError for a backend the CPU cannot run, and for an accelerate launch that started one of several.
    """
    env = os.environ if env is None else env
    world = launched_world_size(env)
    if world <= 1 and "LOCAL_RANK" not in env:
        if accelerate_started_one_of_many(env):
            raise ValueError("accelerate launch ran one process although it was asked for several (--cpu, a "
                             "MULTI_CPU config without mpirun, or --num_processes without --multi_gpu); "
                             f"{CPU_DDP_FIX}, or unset MASTER_ADDR for a one-process run.")
        import torch.distributed

        initialized = torch.distributed.is_available() and torch.distributed.is_initialized()
        return (ddp_backend if initialized else None), use_cpu
    cpu = use_cpu or env.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes", "on")
    if not cpu and has_ddp_device():
        return ddp_backend, use_cpu
    where = "--use_cpu" if cpu else "no GPU"
    if ddp_backend is not None and ddp_backend not in CPU_BACKENDS:
        raise ValueError(f"--ddp_backend {ddp_backend} cannot run on CPU ({where}, {world} processes); pass "
                         "--ddp_backend gloo or leave it unset.")
    if ddp_backend == "mpi":
        import torch.distributed

        if not torch.distributed.is_mpi_available():
            raise ValueError("--ddp_backend mpi: this torch build has no MPI support; pass --ddp_backend gloo or "
                             "leave it unset.")
    return ddp_backend or "gloo", True
