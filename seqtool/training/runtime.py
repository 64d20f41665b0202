"""Device, threads, seeds and precision: the process-level settings of a run."""

from __future__ import annotations

import contextlib
import random
from typing import Any

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


def autocast(
    device: torch.device, precision: str, models: Any = ()
) -> contextlib.AbstractContextManager:
    """bf16 autocast for precision bf16. Given the models it will run (a module or several),
    a recurrent cell the device has no bf16 kernel for is a one-line error up front."""
    if precision == "bf16":
        cells = {
            type(m)
            for model in ([models] if isinstance(models, torch.nn.Module) else models)
            for m in model.modules()
            if isinstance(m, torch.nn.RNNBase)
        }
        missing = sorted(c.__name__ for c in cells if not bf16_supported(device, c))
        if missing:
            raise ConfigError(
                f"--precision bf16: this {device.type.upper()} has no bf16 "
                f"{'/'.join(missing)} kernel (oneDNN needs AVX512-BF16 or AMX); use fp32"
            )
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


_BF16: dict[tuple[str, type], bool] = {}


def bf16_supported(device: torch.device, cell: type = torch.nn.LSTM) -> bool:
    """Whether a bf16-autocast `cell` (nn.LSTM, nn.GRU, nn.RNN) runs on the device: probed
    once per device type and cell (a few ms). CPUs without native bf16 refuse the LSTM."""
    key = (device.type, cell)
    if key not in _BF16:
        module = cell(4, 4, batch_first=True).to(device)
        try:
            with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16):
                module(torch.zeros(1, 2, 4, device=device))
            _BF16[key] = True
        except RuntimeError:
            _BF16[key] = False
    return _BF16[key]


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
