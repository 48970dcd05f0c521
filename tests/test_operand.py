"""The shared validation of operands that drivers only multiply by."""
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from randla._operand import product_scale, real_operand, require_adjoint


def test_precision_and_no_copy():
    a = np.ones((4, 3), dtype=np.float32, order="F")
    out, dtype = real_operand(a)
    assert out is a and dtype == np.float32
    out, dtype = real_operand(np.arange(6).reshape(3, 2))
    assert out.dtype == np.float64 and dtype == np.float64
    out, dtype = real_operand(sp.csr_array(np.eye(3, dtype=np.int8)))
    assert sp.issparse(out) and out.dtype == np.float64
    op = aslinearoperator(np.eye(3, dtype=np.float32))
    assert real_operand(op) == (op, np.float32)


@pytest.mark.parametrize("value, kwargs, exc, match", [
    (np.ones(3), {}, ValueError, "A must be 2-D"),
    (np.ones(3), {"square": True}, ValueError, "square 2-D matrix"),
    (np.ones((2, 3)), {"square": True}, ValueError, "must be square"),
    (np.ones((0, 3)), {"allow_empty": False}, ValueError, "must not be empty"),
    (np.ones((2, 2), dtype=complex), {"complex_hint": "use scipy"}, TypeError,
     "complex.*use scipy"),
    (np.array([["a", "b"]]), {}, TypeError, "real numbers"),
])
def test_bad_operands(value, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        real_operand(value, **kwargs)


def test_require_adjoint_refuses_only_operators_without_transpose_products():
    M = np.arange(12.0).reshape(4, 3)

    class MatvecOnly(LinearOperator):
        def _matvec(self, x):
            return M @ x

    class WithAdjoint(MatvecOnly):
        def _adjoint(self):
            return aslinearoperator(M.T)

    refused = [LinearOperator(M.shape, matvec=lambda x: M @ x, dtype=float),
               MatvecOnly(float, M.shape)]
    accepted = [aslinearoperator(M), WithAdjoint(float, M.shape), M,
                LinearOperator(M.shape, matvec=lambda x: M @ x, rmatvec=lambda y: M.T @ y,
                               dtype=float),
                LinearOperator(M.shape, matvec=lambda x: M @ x, rmatmat=lambda Y: M.T @ Y,
                               dtype=float)]
    for A in refused:
        with pytest.raises(TypeError, match="B is a LinearOperator without rmatvec"):
            require_adjoint(A, "B")
    for A in accepted:
        require_adjoint(A, "B")


def test_product_scale_is_an_exact_power_of_two_or_says_nothing():
    X = np.ones((4, 2))
    assert product_scale(X, 1e-200 * X, np.float64) == 2.0 ** 664      # round(log2 1e-200) = -664
    assert product_scale(X, 3.0 * X, np.float64) == 1.0                 # within range: as it is
    assert product_scale(X, 1e20 * X, np.float32) == 2.0 ** -66
    assert product_scale(X, 0 * X, np.float64) is None
    assert product_scale(X, np.full((4, 2), np.inf), np.float64) is None
    assert product_scale(np.zeros((4, 2)), X, np.float64) is None
