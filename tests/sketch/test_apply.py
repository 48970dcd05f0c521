"""Levels 1-2: applications equal the explicit dense products."""
import numba
import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from randla.sketch import (DenseOperator, SASO, left_sketch, make_operator, right_sketch,
                           two_sided_sketch)

ALL_KINDS = ["gaussian", "rademacher", "uniform", "saso", "countsketch", "laso",
             "row_sampling", "srtt"]
M, N, D = 900, 23, 70


def _bound(dense_s, a, eps):
    # Componentwise forward error bound of a product: m * u * |S| |A|, with
    # a factor 4 for the FFT and the split real/imaginary parts.
    return 4 * dense_s.shape[1] * eps * (np.abs(dense_s) @ np.abs(a))


def _data(dtype, order, rng=0):
    g = np.random.default_rng(rng)
    a = g.standard_normal((M, N))
    if np.dtype(dtype).kind == "c":
        a = a + 1j * g.standard_normal((M, N))
    return np.asarray(a.astype(dtype), order=order)


def _operands(a):
    return {"dense": a, "csr": sp.csr_array(a), "csc": sp.csc_matrix(a),
            "linop": aslinearoperator(a)}


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("order", ["C", "F"])
def test_left_sketch_matches_dense_product(kind, dtype, order):
    op = make_operator(kind, D, M, rng=4)
    a = _data(dtype, order)
    real = np.float32 if dtype == np.float32 else np.float64
    s = op.todense(real).astype(np.float64)
    exact = s @ a.astype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)
    bound = _bound(s, np.abs(a).astype(np.float64), np.finfo(real).eps)
    for name, operand in _operands(a).items():
        result = left_sketch(op, operand)
        assert result.shape == (D, N), name
        assert result.dtype == np.result_type(dtype, real), (name, result.dtype)
        assert np.all(np.abs(result - exact) <= bound), (name, np.abs(result - exact).max())
    np.testing.assert_array_equal(op @ a, left_sketch(op, a))


@pytest.mark.parametrize("scale", [None, -0.25])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_saso_kernels_for_both_layouts_agree_exactly(scale, dtype):
    # The row-major kernel reads signs from index codes and a common
    # magnitude; the column-major kernel reads stored values.  Both add the
    # rows of A in the same order, so they agree bit for bit, for any scale.
    op = SASO(D, M, k=4, rng=6, scale=scale)
    a = np.ascontiguousarray(_data(dtype, "C")[:, :21])   # a full 16-column block, a ragged one
    by_rows = op @ a
    np.testing.assert_array_equal(by_rows, op @ np.asfortranarray(a))
    s = op.todense(np.float64)
    bound = _bound(s, np.abs(a).astype(np.float64), np.finfo(dtype).eps)
    assert np.all(np.abs(by_rows - s @ a.astype(np.float64)) <= bound)


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize("order", ["C", "F"])
def test_right_sketch_matches_dense_product(kind, order):
    op = make_operator(kind, 15, N, rng=5)
    a = _data(np.float64, order)
    s = op.todense()
    exact = a @ s.T
    bound = _bound(np.abs(a), np.abs(s.T), np.finfo(float).eps)
    for name, operand in _operands(a).items():
        result = right_sketch(operand, op)
        assert result.shape == (M, 15)
        assert np.all(np.abs(result - exact) <= bound), name
    np.testing.assert_array_equal(a @ op.T, right_sketch(a, op))
    np.testing.assert_allclose(sp.csr_array(a) @ op.T, exact, rtol=0, atol=bound.max())


class _MatmatOnly(LinearOperator):
    """A subclass with forward products only."""

    def __init__(self, a):
        super().__init__(a.dtype, a.shape)
        self.a = a

    def _matmat(self, x):
        return self.a @ x


def test_left_sketch_of_a_linear_operator_needs_its_adjoint():
    # S @ A is formed as (A^H S^T)^H: an operator without adjoint products is
    # refused before any of its products is called.
    a = _data(np.float64, "C")
    op = SASO(D, M, rng=1)
    calls = []

    def matvec(x):
        calls.append(x)
        return a @ x

    forward_only = [LinearOperator((M, N), matvec=matvec, dtype=np.float64),
                    LinearOperator((M, N), matvec=matvec, matmat=matvec, dtype=np.float64),
                    _MatmatOnly(a)]
    for operand in forward_only:
        with pytest.raises(TypeError, match="without rmatvec or rmatmat.*right_sketch"):
            op @ operand
    assert not calls
    # Either adjoint product is enough; a right sketch needs none.
    exact = op.todense() @ a
    bound = _bound(op.todense(), np.abs(a), np.finfo(float).eps)
    for adjoint in [{"rmatvec": lambda y: a.T @ y}, {"rmatmat": lambda y: a.T @ y}]:
        operand = LinearOperator((M, N), matvec=matvec, dtype=np.float64, **adjoint)
        assert np.all(np.abs(left_sketch(op, operand) - exact) <= bound)
    wide = LinearOperator((N, M), matvec=lambda x: a.T @ x, dtype=np.float64)
    assert np.all(np.abs(right_sketch(wide, op) - exact.T) <= bound.T)


@pytest.mark.parametrize("kind", ["gaussian", "saso", "srtt"])
def test_two_sided_sketch(kind):
    a = _data(np.float64, "C")
    s1 = make_operator(kind, 40, M, rng=1)
    s2 = make_operator("gaussian", 11, N, rng=2)
    exact = s1.todense() @ a @ s2.todense().T
    for operand in _operands(a).values():
        np.testing.assert_allclose(two_sided_sketch(s1, operand, s2), exact,
                                   rtol=1e-10, atol=1e-10 * np.abs(exact).max())
    # Wide data: the right side is applied first; the answer is the same.
    wide = np.random.default_rng(3).standard_normal((50, 2000))
    t1, t2 = DenseOperator(5, 50, rng=1), SASO(30, 2000, rng=2)
    np.testing.assert_allclose(two_sided_sketch(t1, wide, t2),
                               t1.todense() @ wide @ t2.todense().T, rtol=1e-10, atol=1e-10)


def test_two_sided_sketch_of_a_matvec_only_linear_operator():
    # When the left side was cheaper first, a LinearOperator without rmatvec was
    # refused although A @ S2.T, then S1 @ (that), needs only matvec.
    a = _data(np.float64, "C")
    operand = LinearOperator((M, N), matvec=lambda x: a @ x, dtype=np.float64)
    for d1, d2 in [(5, 20), (40, 3)]:
        s1, s2 = DenseOperator(d1, M, rng=1), SASO(d2, N, rng=2)
        exact = s1.todense() @ a @ s2.todense().T
        np.testing.assert_allclose(two_sided_sketch(s1, operand, s2), exact,
                                   rtol=1e-10, atol=1e-10 * np.abs(exact).max())


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_vectors_and_integer_data(kind):
    op = make_operator(kind, D, M, rng=2)
    b = np.arange(M) % 7 - 3                      # integers are cast to float64
    result = op @ b
    assert result.shape == (D,) and result.dtype == np.float64
    np.testing.assert_allclose(result, op.todense() @ b, atol=1e-10)
    np.testing.assert_allclose(right_sketch(b, op), result, atol=1e-10)
    np.testing.assert_allclose(op @ list(b), result, atol=1e-10)


def test_large_dense_operators_are_applied_in_panels(monkeypatch):
    # Force several panels; the answer must not change.
    import randla.sketch._operators as ops
    op = DenseOperator(40, 3000, rng=9)
    a = np.random.default_rng(1).standard_normal((3000, 5))
    whole = op @ a
    monkeypatch.setattr(ops, "PANEL_ENTRIES", 40 * 128)
    np.testing.assert_allclose(op @ a, whole, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(op @ sp.csr_array(a), whole, rtol=1e-12, atol=1e-12)


def test_inputs_are_not_modified_and_nan_propagates():
    a = _data(np.float64, "C")
    keep = a.copy()
    op = SASO(D, M, rng=3)
    op @ a
    a @ DenseOperator(4, N, rng=1).T
    np.testing.assert_array_equal(a, keep)
    a[5, 2] = np.nan
    a[7, 3] = np.inf
    out = op @ a
    assert np.isnan(out[:, 2]).sum() == 8 and np.isinf(out[:, 3]).sum() == 8


@pytest.mark.parametrize("kind", ["saso", "gaussian", "srtt"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_left_sketch_into_out_equals_the_returned_result(kind, dtype):
    # out of either layout, a column block of a wider column-major buffer
    # (where the least-squares drivers put the sketch before its QR), and a
    # vector: the same bits as the returned result, and out itself comes back
    op = make_operator(kind, D, M, rng=8)
    a = _data(dtype, "C")
    expected = left_sketch(op, a)
    wide = np.zeros((D, N + 2), dtype=expected.dtype, order="F")
    outs = [np.empty((D, N), dtype=expected.dtype, order=o) for o in "CF"] + [wide[:, :N]]
    for out, operand in zip(outs + outs[:1], [a, a, a, np.asfortranarray(a)]):
        assert left_sketch(op, operand, out=out) is out
        np.testing.assert_array_equal(out, expected)
    assert np.all(wide[:, N:] == 0)
    vector = np.empty(D, dtype=expected.dtype)
    assert left_sketch(op, a[:, 3], out=vector) is vector
    np.testing.assert_array_equal(vector, left_sketch(op, a[:, 3]))
    linop = np.empty((D, N), dtype=expected.dtype)
    left_sketch(op, aslinearoperator(a), out=linop)
    np.testing.assert_array_equal(linop, left_sketch(op, aslinearoperator(a)))


def test_left_sketch_into_an_out_that_overlaps_a():
    # out is a column-major view of A's own first rows: the kernel's tasks
    # would overwrite rows that other tasks still read.  The result is still
    # that of S @ A.
    a = np.ascontiguousarray(_data(np.float64, "C")[:, :21])
    op = SASO(D, M, rng=2)
    expected = left_sketch(op, a.copy())
    out = a.reshape(-1)[:D * 21].reshape((D, 21), order="F")
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)        # tasks in turn: the first writes before the next reads
        left_sketch(op, a, out=out)
    finally:
        numba.set_num_threads(before)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("out, exc, match", [
    (np.empty((D, N + 1)), ValueError, r"out must have shape \(70, 23\) and dtype float64"),
    (np.empty((D, N), dtype=np.float32), ValueError, "got shape .* dtype float32"),
    ([[0.0] * N] * D, TypeError, "out must be a numpy array"),
    (np.lib.stride_tricks.as_strided(np.empty((D, N)), writeable=False), ValueError,
     "out must be writeable"),
])
def test_bad_out(out, exc, match):
    with pytest.raises(exc, match=match):
        left_sketch(SASO(D, M, rng=0), np.ones((M, N)), out=out)


def test_empty_columns():
    op = SASO(D, M, rng=3)
    assert (op @ np.empty((M, 0))).shape == (D, 0)
    assert (op @ sp.csr_array((M, 0))).shape == (D, 0)


@pytest.mark.parametrize("call, exc, match", [
    (lambda op: op @ np.ones((M + 1, 3)), ValueError, r"A must have 900 rows"),
    (lambda op: np.ones((3, M - 1)) @ op.T, ValueError, r"A must have 900 columns"),
    (lambda op: op @ np.ones((M, 2, 2)), ValueError, "1-D or 2-D"),
    (lambda op: op @ np.array(["a"] * M), TypeError, "must hold numbers"),
    (lambda op: op @ "abc", TypeError, "must hold numbers"),    # a 0-d array, not "shape ()"
    (lambda op: left_sketch(np.eye(3), np.ones(3)), TypeError, "S must be a randla"),
    (lambda op: two_sided_sketch(op, np.ones((M, 4)), SASO(2, 5, k=1, rng=0)), ValueError,
     "A must be 900 x 5"),
    (lambda op: np.ones((2, M)) @ op, TypeError, "A @ S.T"),
    (lambda op: op.T @ np.ones((D, 2)), TypeError, "not a sketch"),
    (lambda op: op @ op, TypeError, "A must be data, not a sketching operator.*todense"),
    (lambda op: op @ SASO(D, M, rng=1).T, TypeError, "A must be data, not a sketching"),
    (lambda op: right_sketch(DenseOperator(3, M, rng=1), op), TypeError,
     "A must be data, not a sketching"),
])
def test_bad_operands(call, exc, match):
    with pytest.raises(exc, match=match):
        call(SASO(D, M, rng=0))


@pytest.mark.parametrize("kind", ("saso", "gaussian", "srtt"))
@pytest.mark.parametrize("dtype, expected", [(">f4", np.float32), (">c8", np.complex64),
                                             (">f8", np.float64)])
def test_big_endian_data_keeps_its_precision(kind, dtype, expected):
    # numpy computes ">f4" @ ">f4" in float32; the precision was compared
    # with the native float32 and fell through to float64
    A = np.random.default_rng(0).standard_normal((40, 3)).astype(dtype)
    S = make_operator(kind, 8, 40, rng=1)
    native = A.astype(expected)
    assert (S @ A).dtype == expected
    assert np.array_equal(S @ A, S @ native)
    out = np.empty((8, 3), dtype=expected)
    assert np.array_equal(left_sketch(S, A, out=out), S @ native)
