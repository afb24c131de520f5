"""The shared solvers of locate-then-edit methods satisfy the equations they are named for."""

from __future__ import annotations

import pytest
import torch

from interv.linalg import (
    SecondMoment,
    emmet_update,
    inverse_times,
    memit_update,
    moment_solve,
    null_space_projector,
    projected_update,
    rank_one_update,
    shared_key_direction,
)


def _data(n=400, d=12, d_out=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=torch.float64)
    return X, X.T @ X / n, torch.randn(d, d_out, generator=g, dtype=torch.float64)


def test_second_moment_streams_exactly():
    X, C, _ = _data()
    acc = SecondMoment(X.shape[1])
    for chunk in X.split(37):
        acc.add(chunk)
    assert acc.count == X.shape[0]
    torch.testing.assert_close(acc.moment(), C, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(acc.mean(), X.mean(0), atol=1e-6, rtol=1e-6)
    with pytest.raises(ValueError, match="No samples"):
        SecondMoment(3).moment()


def test_moment_solve_reuses_the_factor_until_the_moment_changes(monkeypatch):
    X, C, W = _data()
    factorisations = []
    cholesky = torch.linalg.cholesky_ex
    monkeypatch.setattr(
        torch.linalg, "cholesky_ex", lambda A: factorisations.append(1) or cholesky(A)
    )
    for _ in range(3):
        torch.testing.assert_close(C @ moment_solve(C, W), W)
    assert len(factorisations) == 1
    C.mul_(2)  # modified in place: solved with the new values
    torch.testing.assert_close(C @ moment_solve(C, W), W)
    assert len(factorisations) == 2
    singular = torch.zeros(3, 3, dtype=torch.float64)
    singular[0, 0] = 1.0
    b = torch.tensor([[2.0], [0.0], [0.0]], dtype=torch.float64)
    torch.testing.assert_close(moment_solve(singular, b), b)  # least squares when not definite


def test_singular_moments_are_solved_the_same_every_time():
    """The least-squares fallback gives the minimum-norm solution on every call (LAPACK's
    default CPU driver returned zeros here in about one call in six)."""
    singular = torch.zeros(3, 3, dtype=torch.float64)
    singular[0, 0] = 1.0
    b = torch.tensor([[2.0], [0.0], [0.0]], dtype=torch.float64)
    key = singular[:1]  # MEMIT with no preservation: (KᵀK)⁻¹Kᵀ, KᵀK singular
    for _ in range(60):
        torch.testing.assert_close(moment_solve(singular, b), b)
        torch.testing.assert_close(memit_update(key, b[:1], singular, 0.0)[0], key.T)


def test_rank_one_update_maps_the_key_to_its_target():
    X, C, W = _data()
    key, residual = X[0], torch.randn(W.shape[1], dtype=torch.float64)
    u = inverse_times(C, key[None])[0]
    U, V = rank_one_update(u / u.norm(), key, residual)
    torch.testing.assert_close(key @ (W + U @ V.T), key @ W + residual)
    # C^-1 k: a key orthogonal to C^-1 k* (in the C metric) is untouched
    other = X[1] - (X[1] @ u) / (key @ u) * key
    torch.testing.assert_close(other @ (U @ V.T), torch.zeros_like(residual), atol=1e-9, rtol=0)


def test_shared_key_direction_writes_every_key_at_least_cost():
    X, C, _ = _data()
    key = X[0]
    Cinv_k = inverse_times(C, key[None])[0]
    # one key: ROME's C^-1 k / (kᵀ C^-1 k)
    torch.testing.assert_close(
        shared_key_direction(key[None], C, ridge=0.0), Cinv_k / (key @ Cinv_k)
    )
    K = X[:2]
    u = shared_key_direction(K, C, ridge=0.0)
    torch.testing.assert_close(K @ u, torch.ones(2, dtype=torch.float64))
    # least uᵀ C u: moving along a direction that keeps K u = 1 only adds cost
    free = torch.randn(12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    free = free - torch.linalg.lstsq(K, K @ free[:, None]).solution[:, 0]
    assert (K @ free).abs().max() < 1e-9
    cost = u @ C @ u
    for t in (-0.1, 0.1):
        assert (u + t * free) @ C @ (u + t * free) > cost
    # identical keys stay solvable with the ridge and still get ~1
    twin = shared_key_direction(torch.stack([key, key]), C)
    torch.testing.assert_close(
        torch.stack([key, key]) @ twin, torch.ones(2, dtype=torch.float64), atol=1e-3, rtol=0
    )
    torch.testing.assert_close(
        shared_key_direction(K, None, ridge=0.0) @ K.T, torch.ones(2, dtype=torch.float64)
    )


def test_memit_is_the_regularised_least_squares_solution():
    X, C, _ = _data()
    K, R = X[:3], torch.randn(3, 5, dtype=torch.float64)
    U, V = memit_update(K, R, C, weight=2.0)
    delta = U @ V.T
    # gradient of ||K Δ - R||² + 2 tr(Δᵀ C Δ) vanishes at the solution
    grad = K.T @ (K @ delta - R) + 2.0 * C @ delta
    torch.testing.assert_close(grad, torch.zeros_like(grad), atol=1e-9, rtol=0)
    small = memit_update(K, R, C, weight=1e6)
    assert (small[0] @ small[1].T).norm() < 1e-3 * delta.norm()


def test_emmet_meets_the_equality_constraint():
    X, C, _ = _data()
    K, R = X[:4], torch.randn(4, 5, dtype=torch.float64)
    U, V = emmet_update(K, R, C, weight=1.0, norm_lambda=0.0, emmet_lambda=0.0)
    torch.testing.assert_close(K @ (U @ V.T), R)
    # with a ridge the constraint is only approximately met
    U2, V2 = emmet_update(K, R, C, weight=1.0, norm_lambda=0.0, emmet_lambda=10.0)
    assert (K @ (U2 @ V2.T) - R).norm() > 1e-3


def test_null_space_projector_and_projected_update():
    g = torch.Generator().manual_seed(1)
    basis = torch.randn(8, 12, generator=g, dtype=torch.float64)  # preserved keys span 8 of 12 dims
    K0 = torch.randn(500, 8, generator=g, dtype=torch.float64) @ basis
    C = K0.T @ K0 / 500
    P, rank = null_space_projector(C, threshold=1e-8)
    assert rank == 4
    torch.testing.assert_close(P @ P, P)
    torch.testing.assert_close(K0 @ P, torch.zeros_like(K0), atol=1e-8, rtol=0)
    K, R = (
        torch.randn(2, 12, generator=g, dtype=torch.float64),
        torch.randn(2, 5, generator=g, dtype=torch.float64),
    )
    U, V = projected_update(K, R, P, torch.zeros(12, 12, dtype=torch.float64), l2=1e-6)
    delta = U @ V.T
    torch.testing.assert_close(
        K0 @ delta, torch.zeros(500, 5, dtype=torch.float64), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        K @ delta, R, atol=1e-4, rtol=1e-4
    )  # 2 keys fit in a 4-dim null space
    # keys written earlier (``previous``) keep their outputs under a later update
    K2 = torch.randn(1, 12, generator=g, dtype=torch.float64)
    U2, V2 = projected_update(K2, R[:1], P, K.T @ K, l2=1e-6)
    torch.testing.assert_close(
        K @ (U2 @ V2.T), torch.zeros(2, 5, dtype=torch.float64), atol=1e-4, rtol=0
    )


def test_moment_solve_forgets_a_moment_that_is_gone():
    from interv import linalg

    X, C, W = _data()
    moment_solve(C.clone(), W)  # the clone dies at once
    before = len(linalg._FACTORS)
    moment_solve(C, W)
    assert len(linalg._FACTORS) == before + 1
    del C
    assert len(linalg._FACTORS) == before
