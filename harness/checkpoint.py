"""Saving and loading a trained GPT2 (the reference model's layout) as one safetensors file.

The file holds the model's state_dict; its metadata holds the Config as JSON under "config",
so that a checkpoint is enough to rebuild the model. Written by `kata train`, read by
`kata demo --checkpoint PATH`.
"""
import json
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from harness import parts
from harness.config import Config


def save_checkpoint(model: torch.nn.Module, path: "str | Path", **metadata: str) -> Path:
    """Write model.state_dict() and model.cfg to `path` (any extra metadata strings too)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"config": json.dumps(asdict(model.cfg)), **metadata})
    return path


def read_config(path: "str | Path") -> Config:
    with safe_open(str(path), framework="pt") as checkpoint:
        metadata = checkpoint.metadata() or {}
    if "config" not in metadata:
        raise ValueError(f"{path} has no 'config' metadata: it was not written by save_checkpoint")
    return Config(**json.loads(metadata["config"]))


def load_checkpoint(path: "str | Path", device: "str | torch.device" = "cpu") -> torch.nn.Module:
    """A parts.GPT2 (whoever's parts are in use) holding the checkpoint's weights, in eval mode."""
    model = parts.GPT2(read_config(path))
    model.load_state_dict(load_file(str(path), device="cpu"))
    return model.to(device).eval()
