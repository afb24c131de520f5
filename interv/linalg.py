"""Shared linear algebra of locate-then-edit methods: second moments and key/value solves.

Orientation: keys are rows. A weight ``W`` of shape ``[d_in, d_out]`` (canonical, e.g.
``blocks.L.mlp.W_out`` is ``[d_mlp, d_model]``) maps a key ``k`` to ``k @ W``. ``K`` stacks keys
``[n, d_in]``; ``R`` stacks the wanted change of the outputs ``[n, d_out]``; ``C`` is the
uncentred second moment ``E[k kᵀ]`` of the weight's inputs over a corpus ``[d_in, d_in]``.
Every solver returns ``(U, V)`` with ``ΔW = U @ Vᵀ`` (rank ``n``), computed in float64.
"""

from __future__ import annotations

import weakref

import torch
from jaxtyping import Float
from torch import Tensor

from .errors import EditError


class SecondMoment:
    """Streaming ``E[x xᵀ]`` and ``E[x]``: fp32 products per batch, fp64 running sums."""

    def __init__(self, dim: int, device: torch.device | str = "cpu"):
        self.dim = dim
        self.count = 0
        self._sum = torch.zeros(dim, dtype=torch.float64, device=device)
        self._outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def add(self, x: Float[Tensor, "n d"]) -> None:
        x = x.detach().float()
        self.count += x.shape[0]
        self._sum += x.sum(0).double()
        self._outer += (x.T @ x).double()

    def moment(self) -> Float[Tensor, "d d"]:
        if self.count == 0:
            raise EditError("No samples were added to the second moment.")
        return self._outer / self.count

    def mean(self) -> Float[Tensor, " d"]:
        if self.count == 0:
            raise EditError("No samples were added to the second moment.")
        return self._sum / self.count


def _sym_solve(A: Float[Tensor, "d d"], B: Float[Tensor, "d m"]) -> Float[Tensor, "d m"]:
    """Solve ``A X = B`` for a symmetric positive (semi)definite ``A`` (Cholesky, least squares
    when ``A`` is singular)."""
    factor, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_solve(B, factor)
    return _least_squares(A, B)


def _least_squares(A: Tensor, B: Tensor) -> Tensor:
    """The minimum-norm least-squares solution by SVD (``gelsd``). The default driver on CPU,
    ``gelsy``, returned zeros for a singular ``A`` in about one call in six (MKL, 2-core Xeon)."""
    return torch.linalg.lstsq(A, B, driver="gelsd" if A.device.type == "cpu" else None).solution


# per live second moment (by id): a weak reference to it, the tensor version the factor was
# computed at, and its Cholesky factor (None: not positive definite). ROME solves with the same
# C for every edit; an entry goes when its tensor does.
_FACTORS: dict[int, tuple[weakref.ref, int, Tensor | None]] = {}


def moment_solve(C: Float[Tensor, "d d"], B: Float[Tensor, "d m"]) -> Float[Tensor, "d m"]:
    """``C⁻¹ B`` in float64 for a second moment ``C`` that is solved with many times; its
    Cholesky factor is computed once per tensor (again if it was modified in place)."""
    key = id(C)
    entry = _FACTORS.get(key)
    if entry is None or entry[0]() is not C or entry[1] != C._version:
        factor, info = torch.linalg.cholesky_ex(C.double())
        forget = weakref.ref(C, lambda _: _FACTORS.pop(key, None))
        entry = _FACTORS[key] = (forget, C._version, factor if int(info) == 0 else None)
    if entry[2] is None:
        return _least_squares(C.double(), B.double())
    return torch.cholesky_solve(B.double(), entry[2])


def inverse_times(C: Float[Tensor, "d d"], K: Float[Tensor, "n d"]) -> Float[Tensor, "n d"]:
    """``K @ C⁻¹`` for a second moment ``C`` (ROME's key adjustment ``C⁻¹ k``, row by row)."""
    return moment_solve(C, K.double().T).T.to(K.dtype)


def rank_one_update(
    u: Float[Tensor, " d_in"], key: Float[Tensor, " d_in"], residual: Float[Tensor, " d_out"]
) -> tuple[Float[Tensor, "d_in 1"], Float[Tensor, "d_out 1"]]:
    """ROME: ``ΔW = u rᵀ`` with ``r = residual / (key · u)``, so
    ``key @ (W + ΔW) = key @ W + residual``."""
    scale = torch.dot(key.double(), u.double())
    if scale.abs() < 1e-12:
        raise EditError("The edit key is orthogonal to the update direction; cannot write it.")
    r = residual.double() / scale
    return u.double()[:, None], r[:, None]


def memit_update(
    K: Float[Tensor, "n d_in"],
    R: Float[Tensor, "n d_out"],
    C: Float[Tensor, "d_in d_in"],
    weight: float,
) -> tuple[Float[Tensor, "d_in n"], Float[Tensor, "d_out n"]]:
    """MEMIT: ``argmin ||K ΔW - R||² + weight·tr(ΔWᵀ C ΔW)`` = ``(weight·C + KᵀK)⁻¹ Kᵀ R``."""
    K64 = K.double()
    A = weight * C.double() + K64.T @ K64
    return _sym_solve(A, K64.T), R.double().T


def shared_key_direction(
    K: Float[Tensor, "n d_in"], C: Float[Tensor, "d_in d_in"] | None, ridge: float = 1e-4
) -> Float[Tensor, " d_in"]:
    """The ``u`` of least ``uᵀ C u`` with ``K u = 1``: ``ΔW = u vᵀ`` adds the same ``v`` to the
    output of every key in ``K`` while moving other keys' outputs least (``C = I`` if ``None``).

    ``ridge`` (relative to each key's squared ``C⁻¹`` norm) keeps nearly parallel keys solvable;
    with one key this is ROME's ``C⁻¹k / (kᵀ C⁻¹ k)``.
    """
    K64 = K.double()
    CinvKt = K64.T.clone() if C is None else moment_solve(C, K64.T)  # [d_in, n]
    G = K64 @ CinvKt
    G = G + ridge * torch.diag(G.diagonal())
    ones = torch.ones(len(K64), 1, dtype=torch.float64, device=K.device)
    return (CinvKt @ torch.linalg.solve(G, ones))[:, 0]


def emmet_update(
    K: Float[Tensor, "n d_in"],
    R: Float[Tensor, "n d_out"],
    C: Float[Tensor, "d_in d_in"],
    weight: float,
    norm_lambda: float,
    emmet_lambda: float,
) -> tuple[Float[Tensor, "d_in n"], Float[Tensor, "d_out n"]]:
    """EMMET: least preservation error subject to ``K ΔW = R`` exactly (ridge ``emmet_lambda``).

    With ``C' = weight·C + norm_lambda·I`` and ``D = K C'⁻¹ Kᵀ + emmet_lambda·I``:
    ``ΔW = C'⁻¹ Kᵀ D⁻¹ R``.
    """
    K64 = K.double()
    Cp = weight * C.double() + norm_lambda * torch.eye(
        C.shape[0], dtype=torch.float64, device=C.device
    )
    CinvKt = _sym_solve(Cp, K64.T)  # [d_in, n]
    D = K64 @ CinvKt + emmet_lambda * torch.eye(K.shape[0], dtype=torch.float64, device=K.device)
    U = torch.linalg.solve(D, CinvKt.T).T  # C'⁻¹ Kᵀ D⁻¹ (D symmetric)
    return U, R.double().T


def null_space_projector(
    C: Float[Tensor, "d d"], threshold: float
) -> tuple[Float[Tensor, "d d"], int]:
    """AlphaEdit's ``P = Û Ûᵀ`` over the eigenvectors of ``C`` with eigenvalue < ``threshold``.

    Returns ``P`` and the dimension of the null space it projects onto.
    """
    eigvals, eigvecs = torch.linalg.eigh(C.double())
    small = eigvecs[:, eigvals < threshold]
    return small @ small.T, int(small.shape[1])


def projected_update(
    K: Float[Tensor, "n d_in"],
    R: Float[Tensor, "n d_out"],
    P: Float[Tensor, "d_in d_in"],
    previous: Float[Tensor, "d_in d_in"],
    l2: float,
) -> tuple[Float[Tensor, "d_in n"], Float[Tensor, "d_out n"]]:
    """AlphaEdit: ``ΔW = (P (KᵀK + previous) + l2·I)⁻¹ P Kᵀ R``.

    ``previous`` is ``Σ KᵀK`` of earlier (sequential) edits, which the update keeps intact.
    """
    K64, P64 = K.double(), P.double()
    eye = torch.eye(P.shape[0], dtype=torch.float64, device=P.device)
    A = P64 @ (K64.T @ K64 + previous.double()) + l2 * eye
    return torch.linalg.solve(A, P64 @ K64.T), R.double().T
