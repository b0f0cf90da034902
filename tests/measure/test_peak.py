"""Percent-of-peak arithmetic on hand-made configs, and the peak measurement itself (small sizes)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from accelbench.measure.peak import matmul_peak, measure_peaks, ops_per_sample, percent_of_peak


def test_ops_per_sample_bert_by_hand():
    cfg = SimpleNamespace(hidden_size=4, intermediate_size=8, num_hidden_layers=2, vocab_size=10)
    # per token and layer: 4*16 + 2*4*8 + 2*T*4 = 64 + 64 + 8T; T = 3 -> 152 MACs; x 3 tokens x 2 layers = 912
    # + pooler 16 = 928 MACs = 1856 operations
    assert ops_per_sample(cfg, "bert", tokens_in=3) == 1856


def test_ops_per_sample_t5_grows_with_generated_tokens():
    cfg = SimpleNamespace(d_model=8, d_ff=16, num_layers=1, num_decoder_layers=1, vocab_size=100)
    enc_only = ops_per_sample(cfg, "t5", tokens_in=5, tokens_out=0)
    one, two = ops_per_sample(cfg, "t5", 5, 1), ops_per_sample(cfg, "t5", 5, 2)
    assert enc_only < one < two
    assert two - one > 2 * 8 * 100  # each generated token pays at least the output projection


def test_percent_of_peak():
    peaks = {"fp32": 100.0, "bf16": 400.0, "int8": 800.0}
    assert percent_of_peak(50e9, "fp32", peaks) == pytest.approx(50.0)
    assert percent_of_peak(200e9, "int8", peaks) == pytest.approx(25.0)
    assert percent_of_peak(1e9, "int8", {"int8": None}) is None


def test_measure_peaks_cached(tmp_path):
    peaks = measure_peaks(tmp_path, n=128, rounds=2, min_time_s=0.05)
    assert peaks["fp32"] > 0 and len(peaks["fp32_rounds"]) == 2
    assert peaks["fp32"] == max(peaks["fp32_rounds"])  # the best of the rounds
    assert json.loads((tmp_path / "peaks.json").read_text()) == peaks
    assert measure_peaks(tmp_path, n=4096) == peaks  # read back, not measured again
    assert matmul_peak("fp32", n=64, min_time_s=0.05) > 1e6


def test_int8_peak_is_the_best_int8_kernel(tmp_path):
    """On a CPU without VNNI torch._int_mm is a slow loop; fbgemm's u8 x s8 GEMM is not: the peak takes the best."""
    by_kernel = {
        k: matmul_peak("int8", n=128, min_time_s=0.05, kernel=k) for k in ("int_mm", "quantized_linear")
    }
    assert all(v and v > 1e6 for v in by_kernel.values())
    peaks = measure_peaks(tmp_path, n=128, rounds=1, min_time_s=0.05)
    assert peaks["int8_kernel"] in by_kernel
    best = max(max(peaks["int8_int_mm_rounds"]), max(peaks["int8_quantized_linear_rounds"]))
    assert peaks["int8"] == best


def test_ops_of_a_pruned_encoder_count_each_layer_s_kept_widths():
    from types import SimpleNamespace

    from accelbench.measure.peak import ops_per_sample

    full = SimpleNamespace(hidden_size=8, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4)
    same = SimpleNamespace(**vars(full), heads_per_layer=[4, 4], intermediate_per_layer=[32, 32])
    half = SimpleNamespace(**vars(full), heads_per_layer=[2, 1], intermediate_per_layer=[16, 8])
    assert ops_per_sample(same, "bert", 10) == ops_per_sample(full, "bert", 10)
    # layer widths a = heads x 2: (4, 16) and (2, 8); per token 4da + 2di + 2Ta, plus the d^2 pooler
    expected = 2 * (
        10 * (4 * 8 * 4 + 2 * 8 * 16 + 2 * 10 * 4) + 10 * (4 * 8 * 2 + 2 * 8 * 8 + 2 * 10 * 2) + 64
    )
    assert ops_per_sample(half, "bert", 10) == expected


def test_ops_of_a_pruned_t5_count_each_block_s_feed_forward_width():
    from types import SimpleNamespace

    from accelbench.measure.peak import ops_per_sample

    t5 = SimpleNamespace(d_model=8, d_ff=32, num_layers=2, num_decoder_layers=2, vocab_size=10)
    same = SimpleNamespace(**vars(t5), encoder_ff_per_layer=[32, 32], decoder_ff_per_layer=[32, 32])
    pruned = SimpleNamespace(**vars(t5), encoder_ff_per_layer=[32, 32], decoder_ff_per_layer=[16, 8])
    assert ops_per_sample(same, "t5", 10, 6) == ops_per_sample(t5, "t5", 10, 6)
    # per generated token the decoder's feed-forward is 2 d i per block: (32 + 32) - (16 + 8) = 40 fewer i
    assert ops_per_sample(t5, "t5", 10, 6) - ops_per_sample(pruned, "t5", 10, 6) == 2.0 * 6 * 2 * 8 * 40
