"""Distillation losses: soft targets (KD), hidden states and attention maps between student and teacher."""

from __future__ import annotations


def kd_loss(student_logits, teacher_logits, temperature: float = 1.0, mask=None):
    """KL(teacher || student) of the temperature-softened distributions, times T^2 (Hinton et al.).

    Rows are examples (classifiers) or target tokens (T5, with ``mask`` selecting real tokens); the
    result is the mean over rows.
    """
    import torch.nn.functional as F

    t = temperature
    s = F.log_softmax(student_logits.float() / t, dim=-1)
    p = F.log_softmax(teacher_logits.float() / t, dim=-1)
    kl = (p.exp() * (p - s)).sum(-1)
    if mask is not None:
        kl = kl[mask]
    return kl.mean() * t * t


def hidden_loss(student_states, teacher_states, lmap: list[int], projection=None, mask=None):
    """Mean over mapped layers of the MSE between layer outputs (``states[0]`` is the embeddings' output)."""
    import torch.nn.functional as F

    total = 0.0
    for i, j in enumerate(lmap):
        s, t = student_states[i + 1], teacher_states[j + 1]
        if projection is not None:
            s = projection(s)
        if mask is not None:
            s, t = s[mask], t[mask]
        total = total + F.mse_loss(s.float(), t.float())
    return total / len(lmap)


def attention_loss(student_maps, teacher_maps, lmap: list[int], mask=None):
    """Mean over mapped layers of the MSE between attention maps (averaged over heads if counts differ)."""
    total = 0.0
    for i, j in enumerate(lmap):
        s, t = student_maps[i].float(), teacher_maps[j].float()
        if s.shape[1] != t.shape[1]:
            s, t = s.mean(1, keepdim=True), t.mean(1, keepdim=True)
        err = (s - t) ** 2  # batch, heads, query, key
        if mask is not None:
            m = (mask[:, None, :, None] & mask[:, None, None, :]).expand_as(err)
            total = total + err[m].mean()
        else:
            total = total + err.mean()
    return total / len(lmap)
