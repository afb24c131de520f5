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


def test_training_follows_the_loss_of_the_shifted_state():
    """The factored logits train exactly as LM-Steer's definition, the LM loss of
    ``(h + eps s h P1 P2ᵀ) W_U`` (reference loop below, same draws)."""
    g = torch.Generator().manual_seed(1)
    unembed = torch.randn(16, 40, generator=g)
    inputs = [torch.randn(5, 16, generator=g) for _ in range(3)]
    targets = [torch.randint(40, (5,), generator=g) for _ in range(3)]
    signs = [1.0, -1.0, 1.0]
    hp = LMSteerHParams(rank=3, epsilon=0.5, lr=0.05, n_steps=8, batch_size=2, init_var=0.1)
    matrix, losses = train_transform(unembed, inputs, targets, signs, hp)
    gen = torch.Generator().manual_seed(hp.seed)
    p1 = (torch.randn(16, 3, generator=gen) * hp.init_var).requires_grad_()
    p2 = (torch.randn(16, 3, generator=gen) * hp.init_var).requires_grad_()
    opt = torch.optim.Adam([p1, p2], lr=hp.lr)
    expected = []
    for _ in range(hp.n_steps):
        pick = torch.randint(3, (2,), generator=gen).tolist()
        h, t = torch.cat([inputs[i] for i in pick]), torch.cat([targets[i] for i in pick])
        sign = torch.cat([torch.full((5,), signs[i]) for i in pick])[:, None]
        loss = torch.nn.functional.cross_entropy(
            (h + hp.epsilon * sign * (h @ p1 @ p2.T)) @ unembed, t
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        expected.append(loss.item())
    assert losses == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(matrix, (hp.epsilon * p1 @ p2.T).detach(), atol=1e-6, rtol=1e-4)


def test_fit_gives_a_transform_whose_sign_is_the_direction(tiny_models):
    model = tiny_models("llama")
    data = [
        ("good great fine", 1),
        ("nice and kind", 1),
        ("bad awful poor", 0),
        ("rude and mean", 0),
    ]
    artefact = LMSteer(LMSteerHParams(n_steps=5, rank=2, epsilon=1.0)).fit(model, data)
    assert artefact.graph.names() == ["lm_steer"] and artefact.meta["n_texts"] == 4
    graph = artefact
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
