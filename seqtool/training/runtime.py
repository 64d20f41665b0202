"""Device, threads, seeds and precision: the process-level settings of a run."""

from __future__ import annotations

import contextlib
import random

import torch

from seqtool.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """auto: cuda, then mps, then cpu. An explicit device that is absent is an error."""
    if name not in DEVICES and not (name.startswith("cuda:") and name[5:].isdigit()):
        raise ConfigError(f"--device must be one of {', '.join(DEVICES)} (or cuda:N), not {name!r}")
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available here")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("--device mps: no MPS device is available here")
    return torch.device(name)


def set_threads(threads: int) -> None:
    if threads > 0:
        torch.set_num_threads(threads)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    if precision == "bf16":
        if not bf16_supported(device):
            raise ConfigError(
                f"--precision bf16: this {device.type.upper()} has no bf16 recurrent kernels "
                "(oneDNN refuses a bf16 LSTM; CPUs need AVX512-BF16 or AMX); use fp32"
            )
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_BF16: dict[str, bool] = {}


def bf16_supported(device: torch.device) -> bool:
    """Whether a bf16-autocast LSTM runs here: probed once per device type (a few ms)."""
    if device.type not in _BF16:
        lstm = torch.nn.LSTM(4, 4, batch_first=True).to(device)
        try:
            with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                lstm(torch.zeros(1, 2, 4, device=device))
            _BF16[device.type] = True
        except RuntimeError:
            _BF16[device.type] = False
    return _BF16[device.type]


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(_as_tuple(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x):  # random.setstate wants tuples back after a round trip through torch.save
    return tuple(_as_tuple(v) for v in x) if isinstance(x, list | tuple) else x
