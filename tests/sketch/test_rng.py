"""Level 0 randomness: Philox4x32-10 known answers and the RNGState contract."""
import numpy as np
import pytest

from randla.sketch import DenseOperator, RNGState, SASO, as_rng_state, philox4x32
from randla.sketch._rng import check_rng

# Random123's kat_vectors for philox4x32 with 10 rounds: counter words, key
# words (word 0 least significant), expected output words.
KNOWN_ANSWERS = [
    ((0x00000000, 0x00000000, 0x00000000, 0x00000000), (0x00000000, 0x00000000),
     (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF),
     (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


def _join(words):
    return sum(int(w) << (32 * i) for i, w in enumerate(words))


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_known_answers(counter, key, expected):
    out = philox4x32(_join(counter), _join(key))
    assert out.dtype == np.uint32
    assert tuple(int(w) for w in out) == expected


def test_counter_carry_crosses_64_bits():
    # The kernels add stream offsets to a 128-bit counter; the carry out of the
    # low 64 bits must reach the high words exactly as a 128-bit addition.
    key = 0x0123456789ABCDEF
    state = RNGState(key, (1 << 64) - 2)
    op = DenseOperator(1, 16, "rademacher", rng=state, scale=1.0)
    signs = op.todense()[0]
    expected = []
    for t in range(4):
        words = philox4x32(state.counter + t, key)
        expected.extend(1.0 - 2.0 * (int(w) >> 31) for w in words)
    np.testing.assert_array_equal(signs, expected)


def test_state_is_immutable_and_advances():
    s = RNGState(7, 5)
    with pytest.raises(AttributeError):
        s.counter = 3
    assert s.advance(10) == RNGState(7, 15)
    assert s == RNGState(7, 5)
    assert RNGState(1, (1 << 128) - 1).advance(2) == RNGState(1, 1)


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (1 << 64, ValueError), (1.5, TypeError),
                                      (True, TypeError)])
def test_state_rejects_bad_keys(bad, exc):
    with pytest.raises(exc, match="key"):
        RNGState(bad)


def test_rng_argument_follows_spec7():
    assert as_rng_state(3) == as_rng_state(3)
    assert as_rng_state(3) != as_rng_state(4)
    g1, g2 = np.random.default_rng(11), np.random.default_rng(11)
    assert as_rng_state(g1) == as_rng_state(g2)
    # A Generator is advanced by the draw, so a second call gives a new key.
    assert as_rng_state(g1) != as_rng_state(np.random.default_rng(11))
    assert as_rng_state(None) != as_rng_state(None)
    state = RNGState(5, 9)
    assert as_rng_state(state) is state
    with pytest.raises(TypeError, match="rng"):
        as_rng_state("seed")
    with pytest.raises(ValueError, match="rng"):
        as_rng_state(-3)


def test_rng_takes_what_default_rng_takes():
    # SPEC 7: other seeds go through numpy.random.default_rng, so a SeedSequence
    # seeds like the int it holds, and always gives the same operator.
    seq = np.random.SeedSequence(21)
    assert as_rng_state(seq) == as_rng_state(21)
    np.testing.assert_array_equal(DenseOperator(4, 30, rng=seq).todense(),
                                  DenseOperator(4, 30, rng=np.random.SeedSequence(21)).todense())
    assert DenseOperator(4, 30, rng=seq) == DenseOperator(4, 30, rng=seq)
    # A BitGenerator is advanced by the draw, like a Generator.
    bits = np.random.PCG64(21)
    assert as_rng_state(bits) == as_rng_state(21)
    assert as_rng_state(bits) != as_rng_state(21)
    assert as_rng_state([3, 4]) == as_rng_state(np.random.SeedSequence([3, 4]))
    for bad, exc in [(1.5, TypeError), ("seed", TypeError), (True, TypeError),
                     ([-1], ValueError)]:
        with pytest.raises(exc, match="rng must be None, an int"):
            as_rng_state(bad)


def test_check_rng_refuses_what_as_rng_state_refuses_and_draws_nothing():
    for bad, exc in [(1.5, TypeError), ("seed", TypeError), (True, TypeError),
                     (-3, ValueError), ([-1], ValueError)]:
        with pytest.raises(exc, match="rng"):
            check_rng(bad)
    generator = np.random.default_rng(11)
    for good in (None, 0, 7, np.int64(3), RNGState(5, 9), generator, np.random.PCG64(1),
                 np.random.SeedSequence(4), [3, 4]):
        check_rng(good)
    assert as_rng_state(generator) == as_rng_state(np.random.default_rng(11))


def test_next_state_gives_independent_operators():
    a = SASO(20, 300, k=4, rng=0)
    b = SASO(20, 300, k=4, rng=a.next_state)
    assert b.counter == a.counter + a.n_counters
    assert not np.array_equal(a.todense(), b.todense())
    # Construction leaves the state it was given untouched.
    assert a.state == as_rng_state(0)
