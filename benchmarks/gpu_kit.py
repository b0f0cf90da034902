"""Build ``.gpu/``: what the GPU verification (``benchmarks/gpu_check.py``) needs on a machine with no network.

Run here, on the CPU machine, after the built-in models are trained (``accelbench train``):

    .venv/bin/python benchmarks/gpu_kit.py            # builds .gpu/ and prints every part's size

The device machine receives the working tree (tracked and untracked-not-ignored files) plus the carried
``.gpu/``, 64 MiB in all. The kit holds
- ``models/<name>/``: the trained ``minilm-sst2`` and ``t5-multi30k`` checkpoints with their tokenizer, config
  and ``accelbench.json``; the weights as ``weights-fp16.safetensors``, **float16**: the fp32 MiniLM alone is
  88 MB, over the limit. ``gpu_check.py`` upcasts them to float32 before anything loads them, so every
  variant (fp32 included) starts from the fp16-rounded weights; ``manifest.json`` keeps how much the rounding
  changed the weights and, on the first ``--verify-n`` evaluation examples, the predictions;
- ``whl/``: wheels of the packages ``run_experiment`` imports that the device image lacks (``datasets`` and
  its ``dill``/``multiprocess``; found by running an experiment in a venv holding only the image's packages),
  for Python 3.12, at the versions this machine's venv runs;
- ``data/``: the evaluation splits (sst2 ``dev.tsv``, multi30k ``test_2016_flickr``); the loader reads
  every split a task names, so the other splits are their first ``STUB_LINES`` lines (never evaluated).
It fails, naming the parts, when the tree plus the kit would be over the limit.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from accelbench.exceptions import AccelbenchError, ConfigError, ModelError

logger = logging.getLogger("gpu_kit")

REPO = Path(__file__).resolve().parent.parent
KIT_DIR = REPO / ".gpu"
LIMIT_BYTES = 64 * 2**20  # what travels to the device machine, all together
MODELS = ("minilm-sst2", "t5-multi30k")
WHEELS = ("datasets", "dill", "multiprocess")  # missing from the device image (KINDS.md)
PYTHON_VERSION = "3.12"  # the device image's python3
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")  # fmt: skip
WEIGHTS = "model.safetensors"
KIT_WEIGHTS = "weights-fp16.safetensors"
CHECKPOINT_FILES = ("config.json", "generation_config.json", "accelbench.json", "tokenizer.json",
                    "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "spiece.model")  # fmt: skip
EVAL_FILES = {"sst2": ("dev.tsv",), "multi30k": ("test_2016_flickr.en.gz", "test_2016_flickr.de.gz")}
STUB_FILES = {"sst2": ("train.tsv",), "multi30k": ("train.en.gz", "train.de.gz", "val.en.gz", "val.de.gz")}
STUB_LINES = 100
VERIFY_N = 200
EXCLUDE_LINE = "/.gpu/"


def checkpoint_of(name: str) -> tuple[Path, str]:
    """A registered model's trained checkpoint folder and key, through the package (never trains)."""
    from accelbench.models import is_trained, resolve_model

    spec = resolve_model(name)
    if not is_trained(spec):
        raise ModelError(f"model {name!r} is not trained here ({spec.checkpoint_dir()} is incomplete)",
                         f"run `accelbench train --model {name}` first")  # fmt: skip
    return spec.checkpoint_dir(), spec.key


def save_fp16(src: Path, dest: Path) -> dict:
    """Copy a checkpoint with its float weights in float16; returns what the rounding did to them."""
    import torch
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    for f in CHECKPOINT_FILES:
        if (src / f).exists():
            shutil.copy2(src / f, dest / f)
    state = load_file(src / WEIGHTS)
    half, worst, overflow = {}, 0.0, 0
    for k, v in state.items():
        if v.is_floating_point():
            h = v.to(torch.float16)
            overflow += int((~torch.isfinite(h)).sum())
            worst = max(worst, float((h.float() - v.float()).abs().max()) if v.numel() else 0.0)
            v = h
        half[k] = v.contiguous()
    if overflow:
        raise ModelError(
            f"{src}: {overflow} weights overflow float16", "carry this model in bfloat16 instead"
        )
    sha = hashlib.sha256((src / WEIGHTS).read_bytes()).hexdigest()
    save_file(half, dest / KIT_WEIGHTS, metadata={"source_sha256": sha, "upcast_to": "float32"})
    return {"weights_max_abs_rounding": worst, "source_weights_sha256": sha}


def verify_roundtrip(name: str, n: int) -> dict:
    """Predictions of the fp32 model and of its fp16-rounded weights upcast again, on the first ``n`` examples."""
    import copy

    import torch

    from accelbench.measure.quality import agreement, predict, score
    from accelbench.models import resolve_model
    from accelbench.runtimes.torch import torch_predictor
    from accelbench.tasks import eval_split, get_task, task_inputs
    from accelbench.training import load_model

    loaded = load_model(resolve_model(name), train=False, progress=False)
    task = get_task(loaded.spec.task or ("sst2" if loaded.family == "bert" else "multi30k"))
    data = eval_split(task.name, n)
    texts, refs = task_inputs(task, data), list(data[task.reference_column])
    rounded = copy.deepcopy(loaded.model)
    with torch.no_grad():
        for p in rounded.parameters():
            p.copy_(p.to(torch.float16).to(torch.float32))
    out = {}
    for label, model in (("fp32", loaded.model), ("fp16_roundtrip", rounded)):
        pred = torch_predictor(model, loaded.tokenizer, loaded.family, loaded.spec.prefix, "cpu")
        preds = predict(pred, texts, task.kind, progress=False)
        out[label] = {"predictions": preds, "metric": score(task.kind, preds, refs, n_bootstrap=20)}
    a, b = out["fp32"]["predictions"], out["fp16_roundtrip"]["predictions"]
    primary = "accuracy" if task.kind == "classification" else "bleu"
    return {"task": task.name, "n": len(a), "agreement": agreement(b, a),
            f"{primary}_fp32": out["fp32"]["metric"][primary],
            f"{primary}_fp16_roundtrip": out["fp16_roundtrip"]["metric"][primary]}  # fmt: skip


def copy_data(src: Path, dest: Path) -> None:
    """The evaluation splits whole; the other splits the loader insists on, cut to ``STUB_LINES`` lines."""
    for task, files in EVAL_FILES.items():
        (dest / task).mkdir(parents=True, exist_ok=True)
        for f in files:
            if not (src / task / f).exists():
                raise ConfigError(
                    f"{src / task / f} is missing", "run `make data` (or set ACCELBENCH_DATA_DIR)"
                )
            shutil.copy2(src / task / f, dest / task / f)
        for f in STUB_FILES[task]:
            opener = gzip.open if f.endswith(".gz") else open
            with opener(src / task / f, "rt", encoding="utf-8") as fin:
                lines = [line for _, line in zip(range(STUB_LINES), fin, strict=False)]
            with opener(dest / task / f, "wt", encoding="utf-8") as fout:
                fout.writelines(lines)


def download_wheels(dest: Path, packages: tuple[str, ...] = WHEELS) -> list[str]:
    """Wheels for the device's Python of each package, at the version this venv runs (pip download)."""
    dest.mkdir(parents=True, exist_ok=True)
    pins = [f"{p}=={importlib.metadata.version(p)}" for p in packages]
    wanted = {p.lower().replace("-", "_") for p in pins}
    for w in dest.glob("*.whl"):  # one version of each, or the device's pip install stops
        if w.name.split("-")[0].lower() + "==" + w.name.split("-")[1] not in wanted:
            w.unlink()
    have = {w.name.split("-")[0].lower() + "==" + w.name.split("-")[1] for w in dest.glob("*.whl")}
    todo = [p for p in pins if p.lower().replace("-", "_") not in have]
    if todo:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--python-version",
               PYTHON_VERSION, "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)],
               "-d", str(dest), *todo]  # fmt: skip
        subprocess.run(cmd, check=True)
    return pins


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def tree_bytes(repo: Path = REPO) -> dict[str, int]:
    """Bytes that travel besides the kit: tracked files (``git ls-files -z | xargs -0 du -cb``) and the
    untracked files git does not ignore (other work in progress travels too)."""
    out = {}
    for part, flags in (("tracked", ""), ("untracked", "--others --exclude-standard")):
        res = subprocess.run(f"git ls-files -z {flags} | xargs -0 -r du -cb", shell=True, cwd=repo,
                             capture_output=True, text=True)  # fmt: skip
        totals = [line.split()[0] for line in res.stdout.splitlines() if line.endswith("\ttotal")]
        out[part] = sum(int(t) for t in totals)  # xargs may split a long list: one total per batch
    return out


def kit_sizes(kit: Path, models: list[str], travelling: dict[str, int] | None = None) -> dict[str, int]:
    """Bytes of each part of the kit and of what travels beside it (measured now unless given)."""
    return {**{f"model {m}": folder_bytes(kit / "models" / m) for m in models}, "wheels": folder_bytes(kit / "whl"),
            "data": folder_bytes(kit / "data"), **(travelling if travelling is not None else tree_bytes())}  # fmt: skip


def check_size(sizes: dict[str, int], limit: int) -> int:
    """The total, or a ConfigError naming the parts when it is over ``limit``."""
    total = sum(sizes.values())
    if total > limit:
        parts = ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in sorted(sizes.items(), key=lambda kv: -kv[1]))
        raise ConfigError(f"what travels is {total / 2**20:.1f} MiB, over the {limit / 2**20:.1f} MiB limit ({parts})",
                          "carry fewer parts (drop a model or wheel) or remove untracked files that need not travel")  # fmt: skip
    return total


def ensure_excluded(repo: Path = REPO, line: str = EXCLUDE_LINE) -> None:
    """``.gpu/`` is git-ignored locally (.git/info/exclude), so it travels only when carried."""
    exclude = repo / ".git" / "info" / "exclude"
    if exclude.parent.exists():
        text = exclude.read_text() if exclude.exists() else ""
        if line not in text.split("\n"):
            exclude.write_text(text + ("" if not text or text.endswith("\n") else "\n") + line + "\n")


def build_kit(kit: Path = KIT_DIR, checkpoints: dict[str, tuple[Path, str]] | None = None, data: Path | None = None,
              wheels: tuple[str, ...] = WHEELS, limit: int = LIMIT_BYTES, travelling: dict[str, int] | None = None,
              verify_n: int = 0) -> dict:  # fmt: skip
    """Write the kit and its ``manifest.json``; returns the manifest (sizes in bytes under ``sizes``)."""
    from accelbench.paths import data_dir

    checkpoints = checkpoints if checkpoints is not None else {m: checkpoint_of(m) for m in MODELS}
    kit.mkdir(parents=True, exist_ok=True)
    manifest: dict = {"models": {}, "wheels": [], "limit_bytes": limit, "weights_dtype": "float16",
                      "upcast_to": "float32", "stub_lines": STUB_LINES}  # fmt: skip
    for name, (src, key) in checkpoints.items():
        info = save_fp16(Path(src), kit / "models" / name)
        if verify_n:
            info["roundtrip"] = verify_roundtrip(name, verify_n)
        manifest["models"][name] = {"key": key, "source": str(src), **info}
    copy_data(Path(data or data_dir()), kit / "data")
    if wheels:
        manifest["wheels"] = download_wheels(kit / "whl", wheels)
    manifest["sizes"] = sizes = kit_sizes(kit, list(checkpoints), travelling)
    (kit / "manifest.json").write_text(json.dumps(manifest, indent=1))
    manifest["total_bytes"] = check_size(sizes | {"manifest": (kit / "manifest.json").stat().st_size}, limit)
    return manifest


def report(manifest: dict) -> str:
    lines = [f"{k:<28} {v / 2**20:8.2f} MiB" for k, v in manifest["sizes"].items()]
    lines.append(f"{'total (limit %.0f MiB)' % (manifest['limit_bytes'] / 2**20):<28} "
                 f"{manifest['total_bytes'] / 2**20:8.2f} MiB")  # fmt: skip
    lines.append("weights carried in float16; gpu_check.py upcasts them to float32 before loading")
    for name, m in manifest["models"].items():
        lines.append(f"{name}: key {m['key']}, largest rounding {m['weights_max_abs_rounding']:.2e}"
                     + (f", round trip {json.dumps(m['roundtrip'])}" if "roundtrip" in m else ""))  # fmt: skip
    return "\n".join(lines)


def device_call() -> str:
    """The device tool's run call, as gpu_check.py defines it (one place for the command line)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check", Path(__file__).with_name("gpu_check.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.dumps({"command": module.COMMAND, "carry": module.CARRY, "timeout_s": 600})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kit", type=Path, default=KIT_DIR)
    p.add_argument(
        "--verify-n", type=int, default=VERIFY_N, help="examples of the fp16 round-trip check (0: none)"
    )
    p.add_argument("--sizes", action="store_true", help="only measure the built kit and the tree again")
    p.add_argument("--no-wheels", action="store_true", help="skip the wheels (no registry at hand)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ensure_excluded()
    try:
        if args.sizes:  # before a device call: the tree may have grown since the kit was built
            manifest = json.loads((args.kit / "manifest.json").read_text())
            manifest["sizes"] = kit_sizes(args.kit, list(manifest["models"]))
            manifest["total_bytes"] = check_size(manifest["sizes"], manifest["limit_bytes"])
        else:
            manifest = build_kit(args.kit, wheels=() if args.no_wheels else WHEELS, verify_n=args.verify_n)
    except AccelbenchError as e:
        print(f"error: {e.message}\nfix: {e.fix}", file=sys.stderr)
        return 2
    print(report(manifest))
    print(f"device run call: {device_call()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
