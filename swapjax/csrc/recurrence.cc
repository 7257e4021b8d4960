// The time loop of a simple RNN layer for XLA:CPU, called through jax.ffi (swapjax/rnn_kernel.py).
//
// Forward: h_t = act(xw_t + (h_{t-1} * mask) @ U), h_{-1} = 0, for t = 0..T-1.
// Backward (from the stored h): dz_t = (g_t + dh_t) * act'(h_t), dh_{t-1} = (dz_t @ U^T) * mask,
// dU = sum_t (h_{t-1} * mask)^T dz_t.
// The same arithmetic as swapjax.models.recurrence's lax.scan, in one call per layer and pass
// instead of several small XLA operations per time step (which dominate tiny RNNs' training).
// Per model: xw, g, h, dz (T, B, U); U (U, U), transposed once per model and backward call
// into a scratch buffer in blocks; mask (B, U). Leading dimensions beyond
// those are models (vmap's "broadcast_all"), looped over on the calling thread.
#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

enum Activation : int64_t { kRelu = 0, kTanh = 1, kSigmoid = 2 };

typedef float Vec __attribute__((vector_size(64)));  // 16 floats: one AVX-512 register
constexpr int64_t kLanes = 16;

inline Vec Load(const float* p) {
  Vec v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}

inline void Store(float* p, Vec v) { __builtin_memcpy(p, &v, sizeof v); }

// c (rows x n) = a (rows x k) @ b (k x n, row stride n) for the columns [n0, n0 + 16 * kVecs),
// rows <= 4; a's element (r, k) is a[r * a_row + k * a_k]. Accumulators stay in registers.
template <int kRows, int kVecs>
inline void Tile(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t k_dim,
                 int64_t n, float* c, int64_t n0) {
  Vec acc[kRows][kVecs] = {};
  for (int64_t k = 0; k < k_dim; ++k) {
    Vec bv[kVecs];
    for (int v = 0; v < kVecs; ++v) bv[v] = Load(b + k * n + n0 + v * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const float s = a[r * a_row + k * a_k];
      for (int v = 0; v < kVecs; ++v) acc[r][v] += s * bv[v];
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) Store(c + r * n + n0 + v * kLanes, acc[r][v]);
}

template <int kRows>
inline void RowBlock(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t k_dim,
                     int64_t n, float* c) {
  int64_t n0 = 0;
  for (; n0 + 4 * kLanes <= n; n0 += 4 * kLanes) Tile<kRows, 4>(a, a_row, a_k, b, k_dim, n, c, n0);
  for (; n0 + kLanes <= n; n0 += kLanes) Tile<kRows, 1>(a, a_row, a_k, b, k_dim, n, c, n0);
  for (int r = 0; r < kRows; ++r) {  // columns left over (n not a multiple of 16)
    for (int64_t j = n0; j < n; ++j) {
      float s = 0;
      for (int64_t k = 0; k < k_dim; ++k) s += a[r * a_row + k * a_k] * b[k * n + j];
      c[r * n + j] = s;
    }
  }
}

// c (m x n) = a (m x k) @ b (k x n); b and c row-major and contiguous, a's element (r, k) at
// a[r * a_row + k * a_k] (a row-major: a_row = k, a_k = 1; a transposed: a_row = 1, a_k = m).
void Matmul(const float* a, int64_t a_row, int64_t a_k, const float* b, float* c, int64_t m,
            int64_t k_dim, int64_t n) {
  int64_t r = 0;
  for (; r + 4 <= m; r += 4) RowBlock<4>(a + r * a_row, a_row, a_k, b, k_dim, n, c + r * n);
  for (; r + 2 <= m; r += 2) RowBlock<2>(a + r * a_row, a_row, a_k, b, k_dim, n, c + r * n);
  for (; r < m; ++r) RowBlock<1>(a + r * a_row, a_row, a_k, b, k_dim, n, c + r * n);
}

#if defined(__AVX512F__)
// dst's 16 rows (stride ds) = the 16 columns of src's 16 x 16 block (stride ss), in registers:
// after two unpack stages register 4q + c holds, in its 128-bit lane L, column 4L + c of rows
// 4q..4q+3; two lane shuffles gather each column's four lanes.
inline void Transpose16(const float* src, int64_t ss, float* dst, int64_t ds) {
  __m512 r[16], t[16];
  for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_ps(src + i * ss);
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  auto pd = [](__m512 x) { return _mm512_castps_pd(x); };
  for (int i = 0; i < 16; i += 4) {
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i]), pd(t[i + 2])));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i]), pd(t[i + 2])));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[i + 1]), pd(t[i + 3])));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[i + 1]), pd(t[i + 3])));
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 u0 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0x44);
    const __m512 u1 = _mm512_shuffle_f32x4(r[c], r[4 + c], 0xEE);
    const __m512 v0 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0x44);
    const __m512 v1 = _mm512_shuffle_f32x4(r[8 + c], r[12 + c], 0xEE);
    _mm512_storeu_ps(dst + c * ds, _mm512_shuffle_f32x4(u0, v0, 0x88));
    _mm512_storeu_ps(dst + (4 + c) * ds, _mm512_shuffle_f32x4(u0, v0, 0xDD));
    _mm512_storeu_ps(dst + (8 + c) * ds, _mm512_shuffle_f32x4(u1, v1, 0x88));
    _mm512_storeu_ps(dst + (12 + c) * ds, _mm512_shuffle_f32x4(u1, v1, 0xDD));
  }
}
#endif

// t (n x n) = u^T in 16 x 16 blocks (AVX-512 registers where built for them; scalar otherwise
// and at the edges), per backward call and model. XLA's transpose of all the models' kernels
// before the call cost about a quarter of a 128-unit model's step (50 models, one core: 37.4 us
// per model-step vs 27.6 us with no transpose at all); this one about 2.5 us per kernel.
void Transpose(const float* u, int64_t n, float* t) {
  constexpr int64_t kBlock = 16;
  for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
    const int64_t i1 = std::min(i0 + kBlock, n);
    for (int64_t j0 = 0; j0 < n; j0 += kBlock) {
      const int64_t j1 = std::min(j0 + kBlock, n);
#if defined(__AVX512F__)
      if (i1 - i0 == kBlock && j1 - j0 == kBlock) {
        Transpose16(u + i0 * n + j0, n, t + j0 * n + i0, n);
        continue;
      }
#endif
      for (int64_t j = j0; j < j1; ++j)
        for (int64_t i = i0; i < i1; ++i) t[j * n + i] = u[i * n + j];
    }
  }
}

// tanh as XLA:CPU computes it (and Eigen): a 13/6 rational function of the clamped input, x
// itself near 0. Branch-free, so the loops over units vectorize (libm's tanhf does not).
inline float TanhApprox(float x) {
  constexpr float kClamp = 7.90531110763549805f;
  const float c = x < -kClamp ? -kClamp : (x > kClamp ? kClamp : x);
  const float x2 = c * c;
  float p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = x2 * p + -8.60467152213735e-11f;
  p = x2 * p + 5.12229709037114e-08f;
  p = x2 * p + 1.48572235717979e-05f;
  p = x2 * p + 6.37261928875436e-04f;
  p = x2 * p + 4.89352455891786e-03f;
  p = c * p;
  float q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = x2 * q + 2.26843463243900e-03f;
  q = x2 * q + 4.89352518554385e-03f;
  const float t = p / q;
  return (x < 0.0004f && x > -0.0004f) ? x : t;
}

// The activations and their slopes from the output h (models.ACTIVATION_SLOPES).
struct Relu {
  static float Act(float z) { return z > 0 ? z : 0; }
  static float Slope(float h) { return h > 0 ? 1 : 0; }
};
struct Tanh {
  static float Act(float z) { return TanhApprox(z); }
  static float Slope(float h) { return 1 - h * h; }
};
struct Sigmoid {  // XLA:CPU's logistic: 0.5 + 0.5 tanh(z / 2)
  static float Act(float z) { return 0.5f + 0.5f * TanhApprox(0.5f * z); }
  static float Slope(float h) { return h * (1 - h); }
};

struct Dims {
  int64_t models, t, b, u;
};

// Checks x (..., T, B, U), recurrent (..., U, U), mask (..., B, U); the leading dims agree.
ffi::Error Check(ffi::Span<const int64_t> x, ffi::Span<const int64_t> w,
                 ffi::Span<const int64_t> mask, Dims& d) {
  if (x.size() < 3) return ffi::Error::InvalidArgument("recurrence: x needs rank >= 3");
  size_t lead = x.size() - 3;
  if ( w.size() != lead + 2 || mask.size() != lead + 2) {
    return ffi::Error::InvalidArgument("recurrence: operands (..., T, B, U), (..., U, U), (..., B, U)");
  }
  d = Dims{1, x[lead], x[lead + 1], x[lead + 2]};
  for (size_t i = 0; i < lead; ++i) {
    if (w[i] != x[i] || mask[i] != x[i]) {
      return ffi::Error::InvalidArgument("recurrence: leading (model) dimensions differ");
    }
    d.models *= x[i];
  }
  if (w[lead] != d.u || w[lead + 1] != d.u || mask[lead] != d.b || mask[lead + 1] != d.u) {
    return ffi::Error::InvalidArgument("recurrence: kernel must be UxU and the mask BxU");
  }
  return ffi::Error::Success();
}

template <typename A>
void Forward(const Dims& d, const float* xw, const float* w, const float* mask, bool masked,
             float* h) {
  const int64_t step = d.b * d.u;
  std::vector<float> h_in(step);
  for (int64_t m = 0; m < d.models; ++m) {
    const float* x = xw + m * d.t * step;
    const float* wm = w + m * d.u * d.u;
    const float* keep = mask + m * step;
    float* out = h + m * d.t * step;
    for (int64_t t = 0; t < d.t; ++t) {
      float* z = out + t * step;
      if (t == 0) {
        std::fill(z, z + step, 0.0f);
      } else {
        const float* rows = out + (t - 1) * step;
        if (masked) {
          for (int64_t i = 0; i < step; ++i) h_in[i] = rows[i] * keep[i];
          rows = h_in.data();
        }
        Matmul(rows, d.u, 1, wm, z, d.b, d.u, d.u);
      }
      const float* xt = x + t * step;
      for (int64_t i = 0; i < step; ++i) z[i] = A::Act(xt[i] + z[i]);
    }
  }
}

template <typename A>
void Backward(const Dims& d, const float* g, const float* h, const float* w,
              const float* mask, bool masked, float* dz, float* dw) {
  const int64_t step = d.b * d.u, rows = (d.t - 1) * d.b;
  std::vector<float> dh(step), h_in(masked ? rows * d.u : 0), w_t(d.t > 1 ? d.u * d.u : 0);
  for (int64_t m = 0; m < d.models; ++m) {
    const float* gm = g + m * d.t * step;
    const float* hm = h + m * d.t * step;
    const float* keep = mask + m * step;
    float* dzm = dz + m * d.t * step;
    const float* wtm = w_t.data();
    if (d.t > 1) Transpose(w + m * d.u * d.u, d.u, w_t.data());  // dh = dz @ U^T
    std::fill(dh.begin(), dh.end(), 0.0f);
    for (int64_t t = d.t - 1; t >= 0; --t) {
      float* dzt = dzm + t * step;
      const float* gt = gm + t * step;
      const float* ht = hm + t * step;
      for (int64_t i = 0; i < step; ++i) dzt[i] = (gt[i] + dh[i]) * A::Slope(ht[i]);
      if (t > 0) {
        Matmul(dzt, d.u, 1, wtm, dh.data(), d.b, d.u, d.u);
        if (masked)
          for (int64_t i = 0; i < step; ++i) dh[i] *= keep[i];
      }
    }
    // dU = sum over t >= 1 of (h_{t-1} * mask)^T dz_t: h's rows 0.. against dz's rows B.., one
    // product over all of them (a read transposed: row stride 1, reduction stride U).
    const float* h_rows = hm;
    if (masked) {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < d.u; ++i) h_in[r * d.u + i] = hm[r * d.u + i] * keep[(r % d.b) * d.u + i];
      h_rows = h_in.data();
    }
    float* dwm = dw + m * d.u * d.u;
    if (rows == 0) {
      std::fill(dwm, dwm + d.u * d.u, 0.0f);
    } else {
      Matmul(h_rows, 1, d.u, dzm + step, dwm, d.u, rows, d.u);
    }
  }
}

}  // namespace

ffi::Error ForwardImpl(ffi::Buffer<ffi::F32> xw, ffi::Buffer<ffi::F32> recurrent,
                       ffi::Buffer<ffi::F32> mask, ffi::ResultBuffer<ffi::F32> h,
                       int64_t activation, int64_t masked) {
  Dims d;
  ffi::Error error = Check(xw.dimensions(), recurrent.dimensions(), mask.dimensions(), d);
  if (error.failure()) return error;
  auto run = [&](auto act) {
    Forward<decltype(act)>(d, xw.typed_data(), recurrent.typed_data(), mask.typed_data(),
                           masked != 0, h->typed_data());
  };
  if (activation == kRelu) run(Relu{});
  else if (activation == kTanh) run(Tanh{});
  else if (activation == kSigmoid) run(Sigmoid{});
  else return ffi::Error::InvalidArgument("recurrence: activation must be 0, 1 or 2");
  return ffi::Error::Success();
}

ffi::Error BackwardImpl(ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> h,
                        ffi::Buffer<ffi::F32> recurrent, ffi::Buffer<ffi::F32> mask,
                        ffi::ResultBuffer<ffi::F32> dz, ffi::ResultBuffer<ffi::F32> d_recurrent,
                        int64_t activation, int64_t masked) {
  Dims d;
  ffi::Error error = Check(g.dimensions(), recurrent.dimensions(), mask.dimensions(), d);
  if (error.failure()) return error;
  auto run = [&](auto act) {
    Backward<decltype(act)>(d, g.typed_data(), h.typed_data(), recurrent.typed_data(),
                            mask.typed_data(), masked != 0, dz->typed_data(),
                            d_recurrent->typed_data());
  };
  if (activation == kRelu) run(Relu{});
  else if (activation == kTanh) run(Tanh{});
  else if (activation == kSigmoid) run(Sigmoid{});
  else return ffi::Error::InvalidArgument("recurrence: activation must be 0, 1 or 2");
  return ffi::Error::Success();
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SwapjaxRecurrenceForward, ForwardImpl,
                              ffi::Ffi::Bind()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Attr<int64_t>("activation")
                                .Attr<int64_t>("masked"));

XLA_FFI_DEFINE_HANDLER_SYMBOL(SwapjaxRecurrenceBackward, BackwardImpl,
                              ffi::Ffi::Bind()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Attr<int64_t>("activation")
                                .Attr<int64_t>("masked"));
