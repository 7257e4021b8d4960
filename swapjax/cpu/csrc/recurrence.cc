// The time loop of a simple RNN layer for XLA:CPU, called through jax.ffi (swapjax/cpu/rnn_kernel.py).
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
#include <string>
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

inline Vec Splat(float s) { return Vec{} + s; }

// c (rows x n) = a (rows x k) @ b (k x n, row stride n) for the columns [n0, n0 + 16 * kVecs),
// rows <= 4; a's element (r, k) is a[r * a_row + k * a_k]. Accumulators stay in registers.
// kReverse: the reduction in descending k (the same products, summed in the other order).
// kUpdate: c += alpha * (a @ b) instead of c = a @ b.
template <int kRows, int kVecs, bool kReverse = false, bool kUpdate = false>
inline void Tile(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t k_dim,
                 int64_t n, float* c, int64_t n0, float alpha = 0.0f) {
  Vec acc[kRows][kVecs] = {};
  for (int64_t i = 0; i < k_dim; ++i) {
    const int64_t k = kReverse ? k_dim - 1 - i : i;
    Vec bv[kVecs];
    for (int v = 0; v < kVecs; ++v) bv[v] = Load(b + k * n + n0 + v * kLanes);
    for (int r = 0; r < kRows; ++r) {
      const float s = a[r * a_row + k * a_k];
      for (int v = 0; v < kVecs; ++v) acc[r][v] += s * bv[v];
    }
  }
  for (int r = 0; r < kRows; ++r)
    for (int v = 0; v < kVecs; ++v) {
      float* out = c + r * n + n0 + v * kLanes;
      Store(out, kUpdate ? Load(out) + Splat(alpha) * acc[r][v] : acc[r][v]);
    }
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

// The same product with b's 64-column blocks in descending order, each summed in descending k:
// run after Matmul on the same b (a "snake" order), it starts on the part of b that is still in
// L1 (a 128 x 128 kernel is 64 KB; L1 holds 32-48 KB), so a time loop's products with one
// kernel read less from L2 (units128, 4 models alone: 18.6 -> 17.1 us per model-step). Shapes
// other than an even m and n a multiple of 64 run as Matmul.
template <int kRows>
void RowBlockReverse(const float* a, int64_t a_row, int64_t a_k, const float* b, int64_t k_dim,
                     int64_t n, float* c) {
  for (int64_t n0 = n - 4 * kLanes; n0 >= 0; n0 -= 4 * kLanes)
    Tile<kRows, 4, true>(a, a_row, a_k, b, k_dim, n, c, n0);
}

void MatmulReverse(const float* a, int64_t a_row, int64_t a_k, const float* b, float* c,
                   int64_t m, int64_t k_dim, int64_t n) {
  if (n % (4 * kLanes) != 0 || m % 2 != 0) return Matmul(a, a_row, a_k, b, c, m, k_dim, n);
  for (int64_t r = 0; r < m; r += 2)
    RowBlockReverse<2>(a + r * a_row, a_row, a_k, b, k_dim, n, c + r * n);
}

// c += alpha * (a @ b) (an SGD step with the product as the gradient, -lr as alpha), in 4 x 64
// and 4 x 16 tiles; through `scratch` (m x n) where the shapes are not multiples of those.
void MatmulUpdate(const float* a, int64_t a_row, int64_t a_k, const float* b, float* c,
                  int64_t m, int64_t k_dim, int64_t n, float alpha, float* scratch) {
  if (n % kLanes != 0 || m % 4 != 0) {
    Matmul(a, a_row, a_k, b, scratch, m, k_dim, n);
    for (int64_t i = 0; i < m * n; ++i) c[i] += alpha * scratch[i];
    return;
  }
  for (int64_t r = 0; r < m; r += 4) {
    const float* ar = a + r * a_row;
    int64_t n0 = 0;
    for (; n0 + 4 * kLanes <= n; n0 += 4 * kLanes)
      Tile<4, 4, false, true>(ar, a_row, a_k, b, k_dim, n, c + r * n, n0, alpha);
    for (; n0 < n; n0 += kLanes)
      Tile<4, 1, false, true>(ar, a_row, a_k, b, k_dim, n, c + r * n, n0, alpha);
  }
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

// TanhApprox on 16 lanes, branch-free (the scalar loops above with these ternaries do not
// vectorize: 2.8 against 1.1 us per model-step of a 16-unit sigmoid network).
inline Vec TanhApproxVec(Vec x) {
  const Vec clamp = Splat(7.90531110763549805f), zero = {};
  Vec c = x < -clamp ? -clamp : x;
  c = c > clamp ? clamp : c;
  const Vec x2 = c * c;
  Vec p = x2 * Splat(-2.76076847742355e-16f) + Splat(2.00018790482477e-13f);
  p = x2 * p + Splat(-8.60467152213735e-11f);
  p = x2 * p + Splat(5.12229709037114e-08f);
  p = x2 * p + Splat(1.48572235717979e-05f);
  p = x2 * p + Splat(6.37261928875436e-04f);
  p = x2 * p + Splat(4.89352455891786e-03f);
  p = c * p;
  Vec q = x2 * Splat(1.19825839466702e-06f) + Splat(1.18534705686654e-04f);
  q = x2 * q + Splat(2.26843463243900e-03f);
  q = x2 * q + Splat(4.89352518554385e-03f);
  const Vec t = p / q;
  const Vec ax = x < zero ? -x : x;
  return ax < Splat(0.0004f) ? x : t;
}

// The activations and their slopes from the output h (models.ACTIVATION_SLOPES), per float
// and per 16 lanes.
struct Relu {
  static float Act(float z) { return z > 0 ? z : 0; }
  static float Slope(float h) { return h > 0 ? 1 : 0; }
  static Vec Act(Vec z) { return z > Vec{} ? z : Vec{}; }
  static Vec Slope(Vec h) { return h > Vec{} ? Splat(1) : Vec{}; }
};
struct Tanh {
  static float Act(float z) { return TanhApprox(z); }
  static float Slope(float h) { return 1 - h * h; }
  static Vec Act(Vec z) { return TanhApproxVec(z); }
  static Vec Slope(Vec h) { return Splat(1) - h * h; }
};
struct Sigmoid {  // XLA:CPU's logistic: 0.5 + 0.5 tanh(z / 2)
  static float Act(float z) { return 0.5f + 0.5f * TanhApprox(0.5f * z); }
  static float Slope(float h) { return h * (1 - h); }
  static Vec Act(Vec z) { return Splat(0.5f) + Splat(0.5f) * TanhApproxVec(Splat(0.5f) * z); }
  static Vec Slope(Vec h) { return h * (Splat(1) - h); }
};

// z = act(xw + z) over n floats.
template <typename A>
inline void ActRow(const float* xw, float* z, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) Store(z + i, A::Act(Load(xw + i) + Load(z + i)));
  for (; i < n; ++i) z[i] = A::Act(xw[i] + z[i]);
}

// dz = (g + dh) * act'(h) over n floats.
template <typename A>
inline void SlopeRow(const float* g, const float* dh, const float* h, float* dz, int64_t n) {
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    Store(dz + i, (Load(g + i) + Load(dh + i)) * A::Slope(Load(h + i)));
  for (; i < n; ++i) dz[i] = (g[i] + dh[i]) * A::Slope(h[i]);
}

// y += a * x over n floats.
inline void Axpy(float a, const float* x, float* y, int64_t n) {
  int64_t i = 0;
  const Vec av = Splat(a);
  for (; i + kLanes <= n; i += kLanes) Store(y + i, Load(y + i) + av * Load(x + i));
  for (; i < n; ++i) y[i] += a * x[i];
}

// The dot product of n floats.
inline float Dot(const float* x, const float* y, int64_t n) {
  Vec acc = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) acc += Load(x + i) * Load(y + i);
  float sum = 0;
  for (int l = 0; l < kLanes; ++l) sum += acc[l];
  for (; i < n; ++i) sum += x[i] * y[i];
  return sum;
}

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


// One epoch of plain-SGD training of a simple RNN (relu, tanh or sigmoid) followed by a
// per-step Dense head with sigmoid outputs and mean squared error (report 002's exercise
// network), one model after another: each model's weights stay in this core's caches for the
// whole epoch instead of streaming through memory once per XLA operation and step.
// The same arithmetic as swapjax.train's step for that network (models.SpecNet, the scan's
// backward above, train.per_sample, optax.identity scaled by -lr), in another float order.
struct EpochDims {
  int64_t models, steps, b, t, f, u, k, pool;
};

template <typename A>
void SgdEpoch(const EpochDims& d, const float* images, const float* labels, const int32_t* variant,
              const int32_t* run, const int32_t* ids, const float* mask, const float* lr,
              const float* active, float* wx, float* bias, float* w, float* v, float* c,
              float* loss, float* hits) {
  const int64_t T = d.t, B = d.b, F = d.f, U = d.u, K = d.k;
  const int64_t step = B * U, rows = (T - 1) * B;
  std::vector<float> x(B * T * F), y(B * T * K), xw(T * step), h(T * step), dz(T * step),
      g(T * step), dh(step), p(T * B * K), dout(T * B * K), w_t(U * U), dw(U * U), dwx(F * U),
      db(U), dv(U * K), dc(K);
  for (int64_t m = 0; m < d.models; ++m) {
    const float* image_set = images + int64_t(variant[m]) * d.pool * T * F;
    const float* label_set = labels + int64_t(run[m]) * d.pool * T * K;
    const int32_t* ids_m = ids + m * d.steps * B;
    float* wx_m = wx + m * F * U;
    float* b_m = bias + m * U;
    float* w_m = w + m * U * U;
    float* v_m = v + m * U * K;
    float* c_m = c + m * K;
    const float rate = active[m] != 0 ? lr[m] : 0.0f;
    Transpose(w_m, U, w_t.data());
    for (int64_t s = 0; s < d.steps; ++s) {
      const float* keep = mask + s * B;
      float count = 0;
      for (int64_t i = 0; i < B; ++i) count += keep[i];
      for (int64_t i = 0; i < B; ++i) {  // the batch's inputs (B, T, F) and targets (B, T, K)
        const int64_t id = ids_m[s * B + i];
        std::copy(image_set + id * T * F, image_set + (id + 1) * T * F, x.data() + i * T * F);
        std::copy(label_set + id * T * K, label_set + (id + 1) * T * K, y.data() + i * T * K);
      }
      // Forward: xw_t = x_t Wx + bias; h_t = act(xw_t + h_{t-1} U).
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < B; ++i) {
          float* row = xw.data() + t * step + i * U;
          std::copy(b_m, b_m + U, row);
          for (int64_t q = 0; q < F; ++q) Axpy(x[(i * T + t) * F + q], wx_m + q * U, row, U);
        }
      for (int64_t t = 0; t < T; ++t) {
        float* z = h.data() + t * step;
        if (t == 0) std::fill(z, z + step, 0.0f);
        else (t % 2 ? Matmul : MatmulReverse)(h.data() + (t - 1) * step, U, 1, w_m, z, B, U, U);
        ActRow<A>(xw.data() + t * step, z, step);
      }
      // Head, loss, Keras' binary accuracy; dL/d(logit) into dout.
      float loss_sum = 0, hit_sum = 0;
      const float per_output = 1.0f / float(T * K);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < B; ++i) {
          const float* hr = h.data() + t * step + i * U;
          float sample_loss = 0, sample_hits = 0;
          for (int64_t o = 0; o < K; ++o) {
            float logit = c_m[o];
            if (K == 1) logit += Dot(hr, v_m, U);
            else
              for (int64_t j = 0; j < U; ++j) logit += hr[j] * v_m[j * K + o];
            const float prob = Sigmoid::Act(logit);
            const float target = y[(i * T + t) * K + o];
            const float err = prob - target;
            sample_loss += err * err;
            sample_hits += (prob > 0.5f) == (target > 0.5f) ? 1.0f : 0.0f;
            const int64_t at = (t * B + i) * K + o;
            p[at] = prob;  // unread; without this buffer the heap layout measured 20-25% slower
            dout[at] = keep[i] / count * 2.0f * err * per_output * prob * (1.0f - prob);
          }
          loss_sum += keep[i] * sample_loss * per_output;
          hit_sum += keep[i] * sample_hits * per_output;
        }
      loss[m * d.steps + s] = loss_sum / count;
      hits[m * d.steps + s] = hit_sum;
      // Head gradients; dL/dh_t from the head into g.
      std::fill(dv.begin(), dv.end(), 0.0f);
      std::fill(dc.begin(), dc.end(), 0.0f);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < B; ++i) {
          const float* hr = h.data() + t * step + i * U;
          float* gr = g.data() + t * step + i * U;
          std::fill(gr, gr + U, 0.0f);
          for (int64_t o = 0; o < K; ++o) {
            const float dl = dout[(t * B + i) * K + o];
            dc[o] += dl;
            if (K == 1) {
              Axpy(dl, hr, dv.data(), U);
              Axpy(dl, v_m, gr, U);
              continue;
            }
            for (int64_t j = 0; j < U; ++j) {
              dv[j * K + o] += dl * hr[j];
              gr[j] += dl * v_m[j * K + o];
            }
          }
        }
      // Backward through time (as Backward above, unmasked).
      std::fill(dh.begin(), dh.end(), 0.0f);
      for (int64_t t = T - 1; t >= 0; --t) {
        float* dzt = dz.data() + t * step;
        const float* gt = g.data() + t * step;
        const float* ht = h.data() + t * step;
        SlopeRow<A>(gt, dh.data(), ht, dzt, step);
        if (t > 0) (t % 2 ? Matmul : MatmulReverse)(dzt, U, 1, w_t.data(), dh.data(), B, U, U);
      }
      std::fill(dwx.begin(), dwx.end(), 0.0f);
      std::fill(db.begin(), db.end(), 0.0f);
      for (int64_t t = 0; t < T; ++t)
        for (int64_t i = 0; i < B; ++i) {
          const float* dzr = dz.data() + t * step + i * U;
          Axpy(1.0f, dzr, db.data(), U);
          for (int64_t q = 0; q < F; ++q) Axpy(x[(i * T + t) * F + q], dzr, dwx.data() + q * U, U);
        }
      // SGD (a run that has stopped keeps its weights: rate 0).
      if (rate != 0.0f) {
        Axpy(-rate, dwx.data(), wx_m, F * U);
        Axpy(-rate, db.data(), b_m, U);
        if (rows > 0) {  // U -= lr * sum_t h_{t-1}^T dz_t, as the product is computed
          MatmulUpdate(h.data(), 1, U, dz.data() + step, w_m, U, rows, U, -rate, dw.data());
          Transpose(w_m, U, w_t.data());
        }
        Axpy(-rate, dv.data(), v_m, U * K);
        for (int64_t o = 0; o < K; ++o) c_m[o] -= rate * dc[o];
      }
    }
  }
}
// run(Relu{}), run(Tanh{}) or run(Sigmoid{}) by the handlers' `activation` attribute.
template <typename Run>
ffi::Error WithActivation(int64_t activation, const char* what, Run run) {
  if (activation == kRelu) run(Relu{});
  else if (activation == kTanh) run(Tanh{});
  else if (activation == kSigmoid) run(Sigmoid{});
  else return ffi::Error::InvalidArgument(std::string(what) + ": activation must be 0, 1 or 2");
  return ffi::Error::Success();
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
  return WithActivation(activation, "recurrence", run);
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
  return WithActivation(activation, "recurrence", run);
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

// Operands: images (V, P, T, F), labels (R, P, T, K), variant and run of each model (N,),
// batch ids (N, S, B), mask (S, B), learning rate and active (N,), then the weights: input
// kernel (N, F, U), bias (N, U), recurrent kernel (N, U, U), head kernel (N, U, K), head bias
// (N, K). Results: the five weights after the epoch, loss and hits per model and step (N, S).
ffi::Error SgdEpochImpl(ffi::Buffer<ffi::F32> images, ffi::Buffer<ffi::F32> labels,
                        ffi::Buffer<ffi::S32> variant, ffi::Buffer<ffi::S32> run,
                        ffi::Buffer<ffi::S32> ids, ffi::Buffer<ffi::F32> mask,
                        ffi::Buffer<ffi::F32> lr, ffi::Buffer<ffi::F32> active,
                        ffi::Buffer<ffi::F32> wx, ffi::Buffer<ffi::F32> bias,
                        ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> v,
                        ffi::Buffer<ffi::F32> c, ffi::ResultBuffer<ffi::F32> wx_out,
                        ffi::ResultBuffer<ffi::F32> bias_out, ffi::ResultBuffer<ffi::F32> w_out,
                        ffi::ResultBuffer<ffi::F32> v_out, ffi::ResultBuffer<ffi::F32> c_out,
                        ffi::ResultBuffer<ffi::F32> loss, ffi::ResultBuffer<ffi::F32> hits,
                        int64_t activation) {
  auto im = images.dimensions(), lb = labels.dimensions(), id = ids.dimensions(),
       wd = wx.dimensions(), vd = v.dimensions();
  if (im.size() != 4 || lb.size() != 4 || id.size() != 3 || wd.size() != 3 || vd.size() != 3)
    return ffi::Error::InvalidArgument("sgd_epoch: operand ranks");
  EpochDims d{id[0], id[1], id[2], im[2], im[3], wd[2], vd[2], im[1]};
  if (lb[1] != d.pool || lb[2] != d.t || lb[3] != d.k || wd[0] != d.models || wd[1] != d.f ||
      vd[0] != d.models || vd[1] != d.u || w.dimensions()[1] != d.u ||
      mask.dimensions()[0] != d.steps || mask.dimensions()[1] != d.b)
    return ffi::Error::InvalidArgument("sgd_epoch: operand shapes disagree");
  std::copy_n(wx.typed_data(), wx.element_count(), wx_out->typed_data());
  std::copy_n(bias.typed_data(), bias.element_count(), bias_out->typed_data());
  std::copy_n(w.typed_data(), w.element_count(), w_out->typed_data());
  std::copy_n(v.typed_data(), v.element_count(), v_out->typed_data());
  std::copy_n(c.typed_data(), c.element_count(), c_out->typed_data());
  auto go = [&](auto act) {
    SgdEpoch<decltype(act)>(d, images.typed_data(), labels.typed_data(), variant.typed_data(),
                            run.typed_data(), ids.typed_data(), mask.typed_data(),
                            lr.typed_data(), active.typed_data(), wx_out->typed_data(),
                            bias_out->typed_data(), w_out->typed_data(), v_out->typed_data(),
                            c_out->typed_data(), loss->typed_data(), hits->typed_data());
  };
  return WithActivation(activation, "sgd_epoch", go);
}

XLA_FFI_DEFINE_HANDLER_SYMBOL(SwapjaxRnnSgdEpoch, SgdEpochImpl,
                              ffi::Ffi::Bind()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::S32>>()
                                .Arg<ffi::Buffer<ffi::S32>>()
                                .Arg<ffi::Buffer<ffi::S32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Arg<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Ret<ffi::Buffer<ffi::F32>>()
                                .Attr<int64_t>("activation"));
