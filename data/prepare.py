"""Copy the task data sets from the shared folder into data/, so that runs and tests need no network.

    python data/prepare.py [--source DIR] [--dest DIR]

The source is ``--source``, else $ACCELBENCH_SHARED_DATA, else ``../shared/data`` beside the repository.
Files already present with the same size are skipped, so running it again is cheap. Standard library only:
it runs before the project's dependencies are installed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data"
DEFAULT_DEST = REPO_ROOT / "data"
SOURCE_ENV = "ACCELBENCH_SHARED_DATA"
DATASETS = ("sst2", "multi30k")


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024 or unit == "MB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def copy_dataset(src: Path, dest: Path) -> tuple[int, int]:
    """Copy every file under ``src`` to ``dest``; returns (copied, already present)."""
    copied = present = 0
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        rel = path.relative_to(src.parent)
        target = dest / path.relative_to(src)
        size = path.stat().st_size
        if target.is_file() and target.stat().st_size == size:
            print(f"  = {rel} ({_size(size)}, already present)", flush=True)
            present += 1
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        shutil.copyfile(
            path, partial
        )  # contents only: the shared files are read-only, the copies need not be
        os.replace(partial, target)  # an interrupted copy never leaves a half file under the real name
        print(f"  + {rel} ({_size(size)})", flush=True)
        copied += 1
    return copied, present


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=Path(os.environ.get(SOURCE_ENV) or DEFAULT_SOURCE),
        help=f"folder holding {', '.join(DATASETS)} (default: ${SOURCE_ENV} or {DEFAULT_SOURCE})",
    )
    parser.add_argument(
        "--dest", type=Path, default=DEFAULT_DEST, help=f"target folder (default: {DEFAULT_DEST})"
    )
    args = parser.parse_args(argv)
    source, dest = args.source.expanduser(), args.dest.expanduser()

    if not source.is_dir():
        print(
            f"data: no shared data at {source}; {dest} is left as is "
            "(users with network access can load the tasks from the hub instead, with source 'hub' or 'auto')"
        )
        return 0

    print(f"data: copying {', '.join(DATASETS)} from {source} into {dest}", flush=True)
    copied = present = 0
    try:
        for name in DATASETS:
            if not (source / name).is_dir():
                print(f"  ! {name}/ not in {source}, skipped", flush=True)
                continue
            c, p = copy_dataset(source / name, dest / name)
            copied, present = copied + c, present + p
    except OSError as exc:
        print(f"data: copying into {dest} failed: {exc}", file=sys.stderr)
        return 1
    print(f"data: {copied} file(s) copied, {present} already present, in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
