"""Do T5's ONNX Runtime graphs translate exactly as PyTorch's ``generate`` does? Greedy and beam search.

Exports each model with ``export.onnx_t5.export_t5`` and counts identical translations over the first
``--n`` sources of the task's evaluation split (batches of 32):

    python benchmarks/ort_t5_beams.py --models t5-multi30k t5-multi30k-half --n 128 --beams 1 4
"""

from __future__ import annotations

import argparse
import tempfile

from accelbench.export.onnx_t5 import export_t5
from accelbench.runtimes.onnxruntime import OrtSeq2SeqPredictor
from accelbench.runtimes.torch import TorchGenerator
from accelbench.tasks import eval_split, get_task
from accelbench.training import load_model


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="multi30k")
    p.add_argument("--models", nargs="+", default=["t5-multi30k"])
    p.add_argument("--n", type=int, default=128)
    p.add_argument("--beams", nargs="+", type=int, default=[1, 4])
    args = p.parse_args()
    texts = list(eval_split(args.task, args.n)[get_task(args.task).input_column])
    for name in args.models:
        loaded = load_model(name, progress=False)
        with tempfile.TemporaryDirectory() as folder:
            export_t5(loaded.model, loaded.tokenizer, folder, prefix=loaded.spec.prefix)
            ort = OrtSeq2SeqPredictor(folder, loaded.tokenizer, prefix=loaded.spec.prefix,
                                      decoder_start_token_id=loaded.model.config.decoder_start_token_id)  # fmt: skip
            ref = TorchGenerator(loaded.model, loaded.tokenizer, "t5", loaded.spec.prefix)
            for beams in args.beams:
                same = sum(
                    a == b
                    for i in range(0, len(texts), 32)
                    for a, b in zip(
                        ort.generate(texts[i : i + 32], num_beams=beams).texts,
                        ref.generate(texts[i : i + 32], num_beams=beams).texts,
                        strict=True,
                    )  # fmt: skip
                )
                print(f"{name}: {beams} beam(s): {same} of {len(texts)} translations identical to generate's")
            ort.close()


if __name__ == "__main__":
    main()
