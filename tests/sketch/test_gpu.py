"""The CuPy path of the sketch layer: same operators on the GPU as on the CPU.

Skipped (with the reason) where CuPy or a CUDA device is missing.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from randla._testing import require_gpu
from randla.sketch import DenseOperator, SASO, left_sketch, make_operator, right_sketch

cp = require_gpu()

pytestmark = pytest.mark.gpu
RANDOM_KINDS = ["gaussian", "rademacher", "uniform", "saso", "countsketch", "laso",
                "row_sampling"]


@pytest.mark.parametrize("kind", RANDOM_KINDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(70, 1000), (33, 4099)])
def test_gpu_entries_equal_cpu_entries_bit_for_bit(kind, dtype, shape):
    op = make_operator(kind, *shape, rng=2024, dtype=dtype)
    host = op.todense()
    device = op.todense(xp=cp)
    assert isinstance(device, cp.ndarray) and device.dtype == dtype
    np.testing.assert_array_equal(cp.asnumpy(device), host)
    np.testing.assert_array_equal(cp.asnumpy(op.block(slice(5, 29), slice(3, 702), xp=cp)),
                                  host[5:29, 3:702])


def test_gpu_tall_dense_and_large_counters():
    from randla.sketch import RNGState
    op = DenseOperator(300, 17, rng=RNGState(0xFFFFFFFFFFFF, (1 << 64) - 5))
    np.testing.assert_array_equal(cp.asnumpy(op.todense(xp=cp)), op.todense())


def test_gpu_srtt_random_parts_equal_and_transform_close():
    op = make_operator("srtt", 64, 1000, rng=5)
    np.testing.assert_array_equal(cp.asnumpy(op.signs(xp=cp)), op.signs())
    np.testing.assert_array_equal(cp.asnumpy(op._rows.sample(cp)), op.indices)
    # The DCT entries come from each library's cosine: equal to a few ulp.
    np.testing.assert_allclose(cp.asnumpy(op.todense(xp=cp)), op.todense(), rtol=0,
                               atol=1e-15)


@pytest.mark.parametrize("kind", RANDOM_KINDS + ["srtt"])
@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_application_matches_cpu(kind, order, dtype):
    g = np.random.default_rng(0)
    a = np.asarray(g.standard_normal((1200, 40)).astype(dtype), order=order)
    op = make_operator(kind, 90, 1200, rng=7)
    expected = op @ a
    eps = np.finfo(dtype).eps
    bound = 4 * 1200 * eps * (np.abs(op.todense()) @ np.abs(a))
    a_gpu = cp.asarray(a, order=order)
    import cupyx.scipy.sparse as cusparse
    for operand in (a_gpu, cusparse.csr_matrix(cp.asarray(a))):
        result = left_sketch(op, operand)
        assert isinstance(result, cp.ndarray) and result.dtype == dtype
        assert np.all(np.abs(cp.asnumpy(result) - expected) <= bound), kind
    right = right_sketch(cp.asarray(a.T), op)
    assert isinstance(right, cp.ndarray)
    assert np.all(np.abs(cp.asnumpy(right) - expected.T) <= bound.T)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gpu_saso_row_gather_on_wide_data(dtype):
    # several column chunks of the gather kernel, and rows of S with no nonzero
    g = np.random.default_rng(2)
    a = g.standard_normal((700, 2500)).astype(dtype)
    for op in (SASO(60, 700, rng=3), SASO(600, 700, k=1, rng=4)):
        expected = op @ a
        bound = 4 * 700 * np.finfo(dtype).eps * (np.abs(op.todense()) @ np.abs(a))
        result = cp.asnumpy(left_sketch(op, cp.asarray(a)))
        assert np.all(np.abs(result - expected) <= bound)


def test_gpu_complex_and_vectors():
    g = np.random.default_rng(1)
    a = g.standard_normal((500, 6)) + 1j * g.standard_normal((500, 6))
    op = SASO(50, 500, rng=3)
    np.testing.assert_allclose(cp.asnumpy(op @ cp.asarray(a)), op @ a, atol=1e-12)
    np.testing.assert_allclose(cp.asnumpy(op @ cp.asarray(a[:, 0])), op @ a[:, 0], atol=1e-12)


def test_host_and_device_operands_are_not_mixed():
    op = SASO(10, 100, rng=0)
    from randla.sketch import two_sided_sketch
    with pytest.raises(TypeError, match="cannot mix"):
        from randla._backend import get_backend
        get_backend(np.ones(3), cp.ones(3))
    # A sparse host matrix stays on the host, a CuPy array on the device.
    assert isinstance(op @ sp.csr_array(np.ones((100, 2))), np.ndarray)
    assert isinstance(two_sided_sketch(op, cp.ones((100, 20)), SASO(5, 20, k=2, rng=1)),
                      cp.ndarray)
