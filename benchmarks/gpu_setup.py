"""GPU check: the model folder, tokenizer and synthetic rows, the base and its LoRA, and device bookkeeping."""

from __future__ import annotations

import copy
import gzip
import platform
import random
import shutil
import time
import traceback
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_ASSETS = ROOT / ".gpu_assets" / "smollm2-135m-instruct"
LORA_OPTIONS: dict[str, Any] = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}
INSTRUCTION = "Route the ticket to the team that should handle it. Answer with the team's name only."
EPOCHS = 3  # passes over the synthetic rows at most (the learning-rate schedule spans them)
LABELS = ["billing", "technical issue", "account access", "shipping", "refunds", "sales", "security", "other"]

# ---- setup -------------------------------------------------------------------------------------


def prepare_model_folder(assets: Path, work: Path, device: str, tiny: bool) -> tuple[Path, dict[str, Any]]:
    """Copy config and tokenizer (un-gzipping), make random weights from the config on `device`, save them."""
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    folder = work / "model"
    folder.mkdir(parents=True, exist_ok=True)
    for path in assets.iterdir():
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as src, (folder / path.stem).open("wb") as dst:
                shutil.copyfileobj(src, dst)
        elif path.is_file():
            shutil.copy(path, folder / path.name)
    config = AutoConfig.from_pretrained(str(folder))
    if tiny:  # a wiring check on the CPU: same architecture, toy sizes
        config.hidden_size, config.intermediate_size, config.num_hidden_layers = 64, 128, 2
        config.num_attention_heads, config.num_key_value_heads, config.head_dim = 4, 2, 16
    torch.manual_seed(0)
    started = time.perf_counter()
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.save_pretrained(str(folder), safe_serialization=True)
    parameters = sum(p.numel() for p in model.parameters())
    del model
    info = {
        "architecture": config.architectures[0] if config.architectures else config.model_type,
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
        "parameters": parameters,
        "weights": "random (initialised from the config on the device, saved as bf16 safetensors)",
        "setup_seconds": round(time.perf_counter() - started, 2),
    }
    return folder, info


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(folder))


def shared_prefix(tokenizer: Any) -> tuple[int, ...]:
    """The system turn with the instruction, as the chat template writes it (what every row shares)."""
    try:
        ids = tokenizer.apply_chat_template([{"role": "system", "content": INSTRUCTION}], tokenize=True)
        ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
        return tuple(int(i) for i in ids)
    except Exception:  # no chat template: the instruction's tokens
        return tuple(tokenizer(INSTRUCTION)["input_ids"])


def label_tokens(tokenizer: Any) -> list[tuple[int, ...]]:
    end = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 2
    return [(*tokenizer(label, add_special_tokens=False)["input_ids"], int(end)) for label in LABELS]


def synthetic_bodies(count: int, vocab: int, seed: int, low: int = 16, high: int = 192) -> list[list[int]]:
    """Ticket-like prompt bodies: random token ids, lengths uniform in [low, high]."""
    rng = random.Random(seed)
    return [[rng.randrange(200, vocab) for _ in range(rng.randint(low, high))] for _ in range(count)]


def training_rows(count: int, vocab: int, labels: list[tuple[int, ...]], seed: int) -> list[Any]:
    """Rows whose answer (a label) is a function of the body's first token, so the loss can fall."""
    from tuning.batch_loss import TrainRow

    return [
        TrainRow((*body, *labels[body[0] % len(labels)]), len(labels[body[0] % len(labels)]))
        for body in synthetic_bodies(count, vocab, seed)
    ]


def lora_model(base: Any) -> tuple[Any, str]:
    """A LoRA-wrapped copy of the base, as tuning.methods.trainable_model('lora', ...) makes it."""
    torch.manual_seed(0)
    try:
        from tuning.methods import wrap_lora
        from tuning.options import LoraOptions

        wrapped = wrap_lora(copy.deepcopy(base), LoraOptions(**LORA_OPTIONS), ())
        return wrapped, "tuning.methods.wrap_lora(deepcopy(base))"
    except ImportError:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
        return get_peft_model(copy.deepcopy(base), config), "FALLBACK peft.get_peft_model(deepcopy(base))"


def load_base(folder: Path, device: str, dtype: Any) -> tuple[Any, str]:
    try:
        from harness.inference.models import ModelSource, load_model

        source = ModelSource(name="smollm2-135m-random", path=str(folder), fingerprint="gpu-check")
        return load_model(source, device, dtype), "harness.inference.models.load_model"
    except ImportError:
        from transformers import AutoModelForCausalLM

        model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, use_safetensors=True)
        return model.to(device).eval(), "FALLBACK AutoModelForCausalLM.from_pretrained"


# ---- bookkeeping ---------------------------------------------------------------------------------


def _pad_id(tokenizer: Any) -> int:
    """As the engine chooses it: the pad token, else the end token, else 0."""
    for candidate in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if candidate is not None:
            return int(candidate)
    return 0


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def _memory(device: str) -> dict[str, Any]:
    if device != "cuda":
        return {"peak_gpu_mem_mib": None}
    return {
        "peak_gpu_mem_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
        "peak_gpu_reserved_mib": round(torch.cuda.max_memory_reserved() / 2**20, 1),
    }


def _free(device: str) -> None:
    import gc

    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def _error(error: BaseException) -> dict[str, Any]:
    return {"error": f"{type(error).__name__}: {error}", "traceback": traceback.format_exc()[-4000:]}


def environment(device: str) -> dict[str, Any]:
    from importlib.metadata import PackageNotFoundError, version

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda_runtime": torch.version.cuda,
        "device": device,
    }
    for package in ("transformers", "peft", "bitsandbytes", "pydantic", "accelerate", "tokenizers", "safetensors"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            info[package] = None
    info["sdpa_backends"] = {
        name: getattr(torch.backends.cuda, f"{name}_sdp_enabled")()
        for name in ("cudnn", "flash", "mem_efficient", "math")
        if hasattr(torch.backends.cuda, f"{name}_sdp_enabled")
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_total_mib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**20)
    return info
