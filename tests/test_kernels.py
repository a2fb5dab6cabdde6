"""The fast conv2d / max_pool2d kernels against their short references in npadv/conv.py.

Fast and reference must agree in float64 to ~1e-12 and in float32 to 1e-5 relative (the
two sum the same products in a different order); the references themselves are checked
against finite differences, so the chain fast == reference == calculus holds.
"""
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from npadv import Tensor
from npadv.engine.conv import (
    conv2d,
    conv2d_backward_reference,
    conv2d_reference,
    max_pool2d,
    max_pool2d_backward_reference,
    max_pool2d_reference,
    relu_max_pool2d,
)
from npadv.engine.functional import linear
from npadv.engine.workspace import recycled, recycled_like
from npadv.testing.gradcheck import gradcheck

TOLERANCE = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-5, atol=1e-5)}


def _random(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@st.composite
def conv_cases(draw):
    """(x, w, b, g, stride, padding) of one dtype: odd sizes, batch 1, strides and paddings."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    n, c, f = draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, kh - 2 * ph), 9))
    w = draw(st.integers(max(1, kw - 2 * pw), 9))
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return (_random(rng, (n, c, h, w), dtype), _random(rng, (f, c, kh, kw), dtype),
            _random(rng, (f,), dtype), _random(rng, (n, f, ho, wo), dtype), (sh, sw), (ph, pw))


@given(case=conv_cases())
def test_conv2d_fast_path_equals_reference(case):
    x, w, b, g, stride, padding = case
    tol = TOLERANCE[x.dtype.type]
    tx, tw, tb = (Tensor(a, requires_grad=True) for a in (x, w, b))
    y = conv2d(tx, tw, tb, stride, padding)
    np.testing.assert_allclose(y.data, conv2d_reference(x, w, b, stride, padding), **tol)
    y.backward(g)
    gx, gw, gb = conv2d_backward_reference(x, w, g, stride, padding)
    np.testing.assert_allclose(tx.grad, gx, **tol, err_msg="input gradient")
    np.testing.assert_allclose(tw.grad, gw, **tol, err_msg="weight gradient")
    np.testing.assert_allclose(tb.grad, gb, **tol, err_msg="bias gradient")


@given(case=conv_cases())
def test_conv2d_without_input_gradient_gives_the_same_weight_gradient(case):
    x, w, b, g, stride, padding = case
    tw = Tensor(w, requires_grad=True)
    conv2d(Tensor(x), tw, b, stride, padding).backward(g)
    _, gw, _ = conv2d_backward_reference(x, w, g, stride, padding)
    np.testing.assert_allclose(tw.grad, gw, **TOLERANCE[x.dtype.type])


@given(case=conv_cases())
def test_conv2d_reference_backward_matches_finite_differences(case):
    x, w, b, g, stride, padding = (a.astype(np.float64) if isinstance(a, np.ndarray) else a
                                   for a in case)
    gx, gw, gb = conv2d_backward_reference(x, w, g, stride, padding)
    for name, arr, grad in (("x", x, gx), ("w", w, gw), ("b", b, gb)):
        flat = arr.reshape(-1)
        k = int(np.argmax(np.abs(grad).reshape(-1)))  # one element per input is enough here
        saved = flat[k]
        flat[k] = saved + 1e-6
        up = np.sum(g * conv2d_reference(x, w, b, stride, padding))
        flat[k] = saved - 1e-6
        down = np.sum(g * conv2d_reference(x, w, b, stride, padding))
        flat[k] = saved
        np.testing.assert_allclose((up - down) / 2e-6, grad.reshape(-1)[k], rtol=1e-6,
                                   atol=1e-8, err_msg=f"reference gradient w.r.t. {name}")


@st.composite
def pool_cases(draw):
    """(x, g, kernel, stride, padding); x may hold many ties (small integers) or none."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    n, c = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.integers(max(1, kh - 2 * ph), 9)), draw(st.integers(max(1, kw - 2 * pw), 9))
    shape = (n, c, h, w)
    if draw(st.booleans()):
        x = rng.integers(-2, 3, shape).astype(dtype)              # ties in most windows
    else:
        x = _random(rng, shape, dtype)
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return x, _random(rng, (n, c, ho, wo), dtype), (kh, kw), (sh, sw), (ph, pw)


@given(case=pool_cases())
def test_max_pool2d_fast_path_equals_reference(case):
    x, g, kernel, stride, padding = case
    tx = Tensor(x, requires_grad=True)
    y = max_pool2d(tx, kernel, stride, padding)
    np.testing.assert_array_equal(y.data, max_pool2d_reference(x, kernel, stride, padding))
    y.backward(g)
    expected = max_pool2d_backward_reference(x, g, kernel, stride, padding)
    np.testing.assert_allclose(tx.grad, expected, **TOLERANCE[x.dtype.type])


@given(case=pool_cases())
def test_fused_relu_max_pool_equals_relu_then_max_pool(case):
    """Bit for bit, forward and backward, ties and non-positive windows included."""
    x, g, kernel, stride, padding = case
    fused, unfused = Tensor(x, requires_grad=True), Tensor(x, requires_grad=True)
    y = relu_max_pool2d(fused, kernel, stride, padding)
    y_ref = max_pool2d(unfused.relu(), kernel, stride, padding)
    np.testing.assert_array_equal(y.data, y_ref.data)
    y.backward(g)
    y_ref.backward(g)
    np.testing.assert_array_equal(fused.grad, unfused.grad)


def test_sequential_fuses_relu_and_max_pool_with_the_same_numbers():
    from npadv.models import small_cnn

    x = np.random.default_rng(3).random((3, 1, 28, 28)).astype(np.float32)
    model = small_cnn(seed=1)
    results = []
    for fuse in (True, False):
        model.zero_grad()
        tx = Tensor(x, requires_grad=True)
        if fuse:
            y = model(tx)
        else:
            y = tx
            for layer in model.layers:               # one call per layer: nothing fused
                y = layer(y)
        y.backward(np.ones_like(y.data))
        results.append([y.data, tx.grad] + [p.grad for p in model.parameters()])
    for fused, unfused in zip(*results, strict=True):
        np.testing.assert_array_equal(fused, unfused)


def test_max_pool2d_reference_backward_matches_finite_differences():
    rng = np.random.default_rng(0)
    x = rng.permutation(2 * 3 * 7 * 6).reshape(2, 3, 7, 6).astype(np.float64) / 10  # no ties
    g = rng.standard_normal(max_pool2d_reference(x, 3, 2, 1).shape)
    gradcheck(lambda t: (max_pool2d(t, 3, 2, 1) * Tensor(g)).sum(), [x])
    tx = Tensor(x, requires_grad=True)
    (max_pool2d(tx, 3, 2, 1) * Tensor(g)).sum().backward()
    expected = max_pool2d_backward_reference(x, g, 3, 2, 1)   # overlapping windows: sums
    np.testing.assert_allclose(tx.grad, expected, rtol=1e-12, atol=1e-12)


def test_max_pool2d_nan_window_passes_no_gradient():
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    tx = Tensor(x, requires_grad=True)
    max_pool2d(tx, 2).backward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(tx.grad, max_pool2d_backward_reference(x, np.ones((1, 1, 2, 2))))
    assert tx.grad[0, 0, :2, :2].sum() == 0


def test_repeated_runs_are_bit_identical():
    rng = np.random.default_rng(1)
    x, w = _random(rng, (4, 3, 11, 9), np.float32), _random(rng, (5, 3, 3, 3), np.float32)
    results = []
    for _ in range(2):
        tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
        y = max_pool2d(conv2d(tx, tw, None, 1, 1).relu(), 2)
        (y * y).sum().backward()
        results.append((y.data.copy(), tx.grad.copy(), tw.grad.copy()))
    for a, b in zip(*results, strict=True):
        assert a.tobytes() == b.tobytes()


@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 5), n_in=st.integers(1, 7),
       n_out=st.integers(1, 7))
def test_linear_single_op_matches_its_definition_and_finite_differences(seed, batch, n_in, n_out):
    rng = np.random.default_rng(seed)
    x, w, b = (rng.standard_normal(s) for s in ((batch, n_in), (n_out, n_in), (n_out,)))
    np.testing.assert_allclose(linear(x, w, b).data, x @ w.T + b, rtol=1e-12, atol=1e-12)
    gradcheck(linear, [x, w, b])
    tw = Tensor(w, requires_grad=True)
    linear(Tensor(x), tw, b).backward(np.ones((batch, n_out)))   # no input gradient needed
    np.testing.assert_allclose(tw.grad, np.ones((batch, n_out)).T @ x, rtol=1e-12)


def test_recycled_arrays_are_handed_out_again_only_when_nothing_references_them():
    shape = (64, 1024)
    a = recycled(shape, np.float32)
    view = a[1:]
    address = a.ctypes.data
    del a
    b = recycled(shape, np.float32)
    assert b.ctypes.data != address            # a view still references the first array
    del view
    assert recycled(shape, np.float32).ctypes.data == address     # now free again
    assert recycled(shape, np.float64).dtype == np.float64
    assert recycled((3,), np.float32).shape == (3,)                # small: a plain new array
    a = np.empty((4, 5, 6, 7), np.float32).transpose(2, 0, 3, 1)
    assert recycled_like(a).strides == a.strides                    # same memory order
