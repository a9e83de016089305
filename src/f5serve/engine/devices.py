"""Choosing a device and a floating-point type."""

from __future__ import annotations

import torch

from f5serve.errors import DeviceError

_DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
}


def _available(kind: str) -> bool:
    if kind == "cuda":
        return torch.cuda.is_available()
    if kind == "mps":
        return torch.backends.mps.is_available()
    return kind == "cpu"


def default_device() -> str:
    """The best device this machine has: cuda, then mps, then cpu."""
    return next(kind for kind in ("cuda", "mps", "cpu") if _available(kind))


def resolve_device(
    device: str | torch.device | None, dtype: str | torch.dtype | None
) -> tuple[torch.device, torch.dtype]:
    """Validate a device/dtype pair; ``None`` picks the default for the machine.

    Default dtype: float16 on CUDA (as the reference), float32 elsewhere. Half precision is
    refused on the CPU, where it is slow and not what the reference computes.
    """
    try:
        dev = torch.device(device if device is not None else default_device())
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {device!r} (use cpu, cuda, cuda:N or mps)") from exc
    if dev.type not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"unsupported device {dev} (use cpu, cuda, cuda:N or mps)")
    if not _available(dev.type):
        raise DeviceError(f"device {dev} is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {dev} does not exist ({torch.cuda.device_count()} CUDA devices)")
    if dtype is None:
        resolved = torch.float16 if dev.type == "cuda" else torch.float32
    elif isinstance(dtype, torch.dtype):
        resolved = dtype
    elif dtype in _DTYPES:
        resolved = _DTYPES[dtype]
    else:
        raise DeviceError(f"unknown dtype {dtype!r} (use float32, float16 or bfloat16)")
    if resolved not in (torch.float32, torch.float16, torch.bfloat16):
        raise DeviceError(f"unsupported dtype {resolved} (use float32, float16 or bfloat16)")
    if dev.type == "cpu" and resolved != torch.float32:
        raise DeviceError("half precision (float16/bfloat16) is only supported on GPU devices")
    return dev, resolved
