"""LM-Steer: the learned transform lowers the loss it trains on and steers both ways."""

from __future__ import annotations

import pytest
import torch

from interv.steer.apply import ApplyHParams, steering_for
from interv.steer.lm_steer import LMSteer, LMSteerHParams, train_transform


def test_training_lowers_the_signed_lm_loss():
    g = torch.Generator().manual_seed(0)
    unembed = torch.randn(16, 40, generator=g)
    inputs = [torch.randn(6, 16, generator=g) for _ in range(4)]
    targets = [torch.randint(40, (6,), generator=g) for _ in range(4)]
    hp = LMSteerHParams(rank=4, epsilon=1.0, lr=0.05, n_steps=60, batch_size=4)
    matrix, losses = train_transform(unembed, inputs, targets, [1.0, 1.0, -1.0, -1.0], hp)
    assert matrix.shape == (16, 16) and losses[-1] < 0.9 * losses[0]


def test_fit_gives_a_transform_whose_sign_is_the_direction(tiny_models):
    model = tiny_models("llama")
    data = [("good great fine", 1), ("nice and kind", 1), ("bad awful poor", 0), ("rude and mean", 0)]
    graph = LMSteer(LMSteerHParams(n_steps=5, rank=2, epsilon=1.0)).fit(model, data)
    assert graph.names() == ["lm_steer"] and graph.meta["n_texts"] == 4
    ids = torch.tensor([[5, 6, 7]])
    plus = model.forward(ids, graph=steering_for(graph, ApplyHParams(multipliers=[1.0])).graph)
    minus = model.forward(ids, graph=steering_for(graph, ApplyHParams(multipliers=[-1.0])).graph)
    plain = model.forward(ids)
    assert not torch.allclose(plus, minus)
    with pytest.raises(ValueError, match="adaptor_class 'add' is not supported"):
        LMSteerHParams(adaptor_class="add")
    with pytest.raises(ValueError, match="`rank` must be >= 1"):
        LMSteerHParams(rank=0)
    assert plain.shape == plus.shape
