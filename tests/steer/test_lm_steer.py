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


@pytest.mark.parametrize("dummy", [False, True])
def test_training_follows_the_loss_of_the_shifted_state(dummy):
    """The factored logits train exactly as LM-Steer's definition, the LM loss of
    ``(h + eps s h P1 P2ᵀ + eps h Q1 Q2ᵀ) W_U`` with the dummy steer ``Q`` at +1 on every text
    (reference loop below, same draws)."""
    g = torch.Generator().manual_seed(1)
    unembed = torch.randn(16, 40, generator=g)
    inputs = [torch.randn(5, 16, generator=g) for _ in range(3)]
    targets = [torch.randint(40, (5,), generator=g) for _ in range(3)]
    signs = [1.0, -1.0, 1.0]
    hp = LMSteerHParams(
        rank=3, epsilon=0.5, lr=0.05, n_steps=8, batch_size=2, init_var=0.1, dummy_steer=dummy
    )
    matrix, losses = train_transform(unembed, inputs, targets, signs, hp)
    gen = torch.Generator().manual_seed(hp.seed)
    ps = [
        (torch.randn(16, 3, generator=gen) * hp.init_var).requires_grad_()
        for _ in range(4 if dummy else 2)
    ]
    opt = torch.optim.Adam(ps, lr=hp.lr)
    expected = []
    for _ in range(hp.n_steps):
        pick = torch.randint(3, (2,), generator=gen).tolist()
        h, t = torch.cat([inputs[i] for i in pick]), torch.cat([targets[i] for i in pick])
        sign = torch.cat([torch.full((5,), signs[i]) for i in pick])[:, None]
        shifted = h + hp.epsilon * sign * (h @ ps[0] @ ps[1].T)
        if dummy:
            shifted = shifted + hp.epsilon * (h @ ps[2] @ ps[3].T)
        loss = torch.nn.functional.cross_entropy(shifted @ unembed, t)
        opt.zero_grad()
        loss.backward()
        opt.step()
        expected.append(loss.item())
    assert losses == pytest.approx(expected, rel=1e-5)
    torch.testing.assert_close(
        matrix, (hp.epsilon * ps[0] @ ps[1].T).detach(), atol=1e-6, rtol=1e-4
    )


def test_the_dummy_steer_keeps_what_both_labels_share_out_of_the_transform():
    """Issue 22: both labels' texts continue the same way (token 0 half the time, the same
    for both labels) and the state carries the label in one coordinate. The signed transform
    alone learns to push token 0 for both labels (``s * h W`` reading the label coordinate),
    so steering pushes the texts' shared style, not the label; with the dummy steer beside it,
    the dummy fits the shared token and the transform leaves it (almost) alone."""
    g = torch.Generator().manual_seed(0)
    unembed = torch.randn(8, 12, generator=g)
    signs = [1.0, -1.0] * 8
    inputs, targets = [], []
    for sign in signs:
        h = torch.randn(6, 8, generator=g)
        h[:, 0] = sign + 0.5 * torch.randn(6, generator=g)  # the state knows the label
        h[:, 1] = 2.0  # and has a constant part, as a real final state does
        inputs.append(h)
        t = torch.randint(12, (6,), generator=g)
        t[torch.rand(6, generator=g) < 0.5] = 0
        targets.append(t)
    positive = torch.cat([h for h, sign in zip(inputs, signs, strict=True) if sign > 0])

    def push(dummy: bool) -> float:
        """How much the learned transform at +1 raises token 0 on the positive texts."""
        hp = LMSteerHParams(
            rank=2, epsilon=1.0, lr=0.05, n_steps=300, batch_size=8, dummy_steer=dummy
        )
        matrix, _ = train_transform(unembed, inputs, targets, signs, hp)
        before = (positive @ unembed).log_softmax(-1)[:, 0]
        after = ((positive + positive @ matrix) @ unembed).log_softmax(-1)[:, 0]
        return (after - before).mean().item()

    alone, beside = push(False), push(True)
    assert alone > 1.0 and abs(beside) < 0.3 * alone


def test_easyedit2_dummy_steer_index_means_on():
    assert LMSteerHParams.from_easyedit2({"dummy_steer": 1}, "x") == {"dummy_steer": True}
    assert LMSteerHParams.from_easyedit2({"dummy_steer": None}, "x") == {"dummy_steer": False}
    assert LMSteerHParams().dummy_steer


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
