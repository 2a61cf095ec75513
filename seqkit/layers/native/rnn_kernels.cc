// seqkit native recurrent kernels (see rnn_kernels.h). Compiled with
// -O3 -march=native on the machine that runs them; GCC vector extensions give
// AVX-512, AVX2 or SSE code from the same source.
#include "rnn_kernels.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace seqkit {
namespace {

#if defined(__AVX512F__)
constexpr int VW = 16;  // floats per vector
constexpr int MR = 8;   // microkernel rows
#else
constexpr int VW = 8;
constexpr int MR = 4;
#endif
constexpr int NV = 2;          // vectors per microkernel row
constexpr int NB = NV * VW;    // panel width (columns)

typedef float vf __attribute__((vector_size(VW * 4)));               // aligned
typedef float vfu __attribute__((vector_size(VW * 4), aligned(4)));  // unaligned

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
inline vf splat(float x) { return vf{} + x; }

// tanh as a rational function of x (the approximation Eigen and XLA use for
// float32: error of a few ulp), for scalars and vectors alike.
template <typename V>
inline V tanh_(V x) {
  const V hi = V{} + 7.90531110763549805f, lo = V{} - 7.90531110763549805f;
  V xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  const V x2 = xc * xc;
  V p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * xc;
  V q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  V r = p / q;
  const V tiny = V{} + 0.0004f;
  V ax = x < 0 ? -x : x;
  return ax < tiny ? x : r;
}
inline float tanh_(float x) {
  typedef float v1 __attribute__((vector_size(4)));
  v1 v = {x};
  return tanh_<v1>(v)[0];
}
template <typename V>
inline V sigm_(V x) {
  return tanh_(x * 0.5f) * 0.5f + 0.5f;
}

// Runs the body over columns [0, n), `j` the first column and `V` the type
// (a vector of VW floats, then float for the tail), so each cell's arithmetic
// is written once.
#define SEQKIT_COLS(n, ...)                             \
  do {                                                  \
    int j_ = 0;                                         \
    for (; j_ + VW <= (n); j_ += VW) {                  \
      typedef vf V;                                     \
      const int j = j_;                                 \
      __VA_ARGS__;                                      \
    }                                                   \
    for (; j_ < (n); ++j_) {                            \
      typedef float V;                                  \
      const int j = j_;                                 \
      __VA_ARGS__;                                      \
    }                                                   \
  } while (0)

template <typename V>
inline V ld(const float* p);
template <>
inline vf ld<vf>(const float* p) { return load(p); }
template <>
inline float ld<float>(const float* p) { return *p; }
inline void st(float* p, vf v) { store(p, v); }
inline void st(float* p, float v) { *p = v; }

// ---- GEMM microkernel: C[m rows, NB cols] += A[m, K] @ panel
template <int ROWS>
inline void tile(const float* A, int lda, const float* P, int K, float* C, int ldc) {
  vf acc[ROWS][NV];
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = load(C + r * ldc + v * VW);
  for (int k = 0; k < K; ++k) {
    vf b[NV];
    for (int v = 0; v < NV; ++v) b[v] = *reinterpret_cast<const vf*>(P + k * NB + v * VW);
    for (int r = 0; r < ROWS; ++r) {
      const float a = A[r * lda + k];
      for (int v = 0; v < NV; ++v) acc[r][v] += a * b[v];
    }
  }
  for (int r = 0; r < ROWS; ++r)
    for (int v = 0; v < NV; ++v) store(C + r * ldc + v * VW, acc[r][v]);
}

inline void tile_rows_any(int rows, const float* A, int lda, const float* P, int K, float* C,
                          int ldc) {
  int r = 0;
  for (; r + MR <= rows; r += MR) tile<MR>(A + r * lda, lda, P, K, C + r * ldc, ldc);
  for (; r + 2 <= rows; r += 2) tile<2>(A + r * lda, lda, P, K, C + r * ldc, ldc);
  for (; r < rows; ++r) tile<1>(A + r * lda, lda, P, K, C + r * ldc, ldc);
}

}  // namespace

int tile_rows() { return MR; }

void pack_b(const float* B, int K, int N, bool transpose, Packed* out) {
  pack_b_ld(B, K, N, transpose ? K : N, transpose, out);
}

void pack_b_ld(const float* B, int K, int N, int ldb, bool transpose, Packed* out) {
  const int nblk = (N + NB - 1) / NB;
  size_t bytes = sizeof(float) * static_cast<size_t>(nblk) * K * NB;
  bytes = (bytes + 63) / 64 * 64;
  float* d = static_cast<float*>(std::aligned_alloc(64, bytes));
  std::memset(d, 0, bytes);
  for (int jb = 0; jb < nblk; ++jb) {
    const int n0 = jb * NB, n1 = std::min(N, n0 + NB);
    for (int k = 0; k < K; ++k) {
      float* dst = d + (static_cast<size_t>(jb) * K + k) * NB;
      if (!transpose) {
        std::memcpy(dst, B + static_cast<size_t>(k) * ldb + n0, sizeof(float) * (n1 - n0));
      } else {
        for (int n = n0; n < n1; ++n) dst[n - n0] = B[static_cast<size_t>(n) * ldb + k];
      }
    }
  }
  out->data = d;
  out->K = K;
  out->N = N;
}

void free_packed(Packed* p) {
  std::free(p->data);
  p->data = nullptr;
}

void gemm_acc(const float* A, int lda, int M, const Packed& P, float* C, int ldc) {
  const int K = P.K, N = P.N, nfull = N / NB;
  for (int jb = 0; jb < nfull; ++jb)
    tile_rows_any(M, A, lda, P.data + static_cast<size_t>(jb) * K * NB, K, C + jb * NB, ldc);
  const int rem = N - nfull * NB;
  if (rem) {  // last, partial panel: through a zero-padded buffer
    alignas(64) float buf[MR * NB];
    const float* Pj = P.data + static_cast<size_t>(nfull) * K * NB;
    for (int r = 0; r < M; r += MR) {
      const int rows = std::min(MR, M - r);
      std::memset(buf, 0, sizeof(buf));
      for (int i = 0; i < rows; ++i)
        std::memcpy(buf + i * NB, C + (r + i) * ldc + nfull * NB, sizeof(float) * rem);
      tile_rows_any(rows, A + r * lda, lda, Pj, K, buf, NB);
      for (int i = 0; i < rows; ++i)
        std::memcpy(C + (r + i) * ldc + nfull * NB, buf + i * NB, sizeof(float) * rem);
    }
  }
}

// ------------------------------------------------------------------ masks
// With a mask (T, B) of 0 / 1, a masked step keeps the states and outputs
// the previous output (zeros with zero_out), as Keras does. The forward pass
// then records the states H apart from the outputs Y (without a mask H is Y).
namespace {

inline float mask_at(const float* mask, int t, int B, int row) {
  return mask ? mask[static_cast<size_t>(t) * B + row] : 1.0f;
}

// After step t wrote the new states into H[t] (and C[t]): masked rows take
// the previous states back, and Y[t] gets its value.
void apply_mask_forward(int t, int B, int U, const float* mask, bool zero_out, const float* hp,
                        float* H, float* Y, const float* cp, float* C, int r0, int r1) {
  if (!mask) return;
  for (int row = r0; row < r1; ++row) {
    const size_t o = (static_cast<size_t>(t) * B + row) * U;
    const size_t p = static_cast<size_t>(row - r0) * U;  // offset in hp / cp (rows r0..)
    if (mask_at(mask, t, B, row) != 0.0f) {
      std::memcpy(Y + o, H + o, sizeof(float) * U);
      continue;
    }
    std::memcpy(H + o, hp + p, sizeof(float) * U);
    if (C) std::memcpy(C + o, cp + p, sizeof(float) * U);
    if (zero_out || t == 0)
      std::memset(Y + o, 0, sizeof(float) * U);
    else
      std::memcpy(Y + o, Y + o - static_cast<size_t>(B) * U, sizeof(float) * U);
  }
}

// Backward carries of one shard: dh (into the step), next (dh out of the
// step, built in place), dy (gradient reaching an earlier output through
// masked steps that repeat it).
struct Carry {
  std::vector<float> dh, next, dy;
  Carry(const float* dhT, int r0, int r1, int U)
      : dh(dhT + static_cast<size_t>(r0) * U, dhT + static_cast<size_t>(r1) * U),
        next(dh.size()),
        dy(dh.size(), 0.0f) {}
  // A masked row: nothing flows into the cell (its `width` pre-activation
  // gradients `dz` are zero); dh passes through, and the output gradient
  // goes to the previous output unless outputs are zeroed.
  void masked_row(int b, int U, const float* dyrow, bool zero_out, float* dz, int width) {
    std::memset(dz, 0, sizeof(float) * width);
    float* d = dy.data() + static_cast<size_t>(b) * U;
    for (int j = 0; j < U; ++j) d[j] = zero_out ? 0.0f : d[j] + dyrow[j];
    std::memcpy(next.data() + static_cast<size_t>(b) * U, dh.data() + static_cast<size_t>(b) * U,
                sizeof(float) * U);
  }
};

const float* prev_rows(const float* seq, const float* s0, int t, int B, int U, int r0) {
  return t == 0 ? s0 + static_cast<size_t>(r0) * U
                : seq + (static_cast<size_t>(t - 1) * B + r0) * U;
}

}  // namespace

// ------------------------------------------------------------------ SimpleRNN
void simple_fwd(int T, int B, int U, const float* xp, const float* h0, const Packed& R,
                const float* mask, bool zero_out, float* Y, float* H, int r0, int r1) {
  const int M = r1 - r0;
  for (int t = 0; t < T; ++t) {
    float* h = H + (static_cast<size_t>(t) * B + r0) * U;
    const float* hp = prev_rows(H, h0, t, B, U, r0);
    std::memcpy(h, xp + (static_cast<size_t>(t) * B + r0) * U, sizeof(float) * M * U);
    gemm_acc(hp, U, M, R, h, U);
    for (int b = 0; b < M; ++b) {
      float* hb = h + b * U;
      SEQKIT_COLS(U, st(hb + j, tanh_(ld<V>(hb + j))));
    }
    apply_mask_forward(t, B, U, mask, zero_out, hp, H, Y, nullptr, nullptr, r0, r1);
  }
}

void simple_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* H,
                const Packed& RT, const float* mask, bool zero_out, float* dXP, float* dh0,
                int r0, int r1) {
  const int M = r1 - r0;
  Carry cr(dhT, r0, r1, U);
  for (int t = T - 1; t >= 0; --t) {
    const size_t off = (static_cast<size_t>(t) * B + r0) * U;
    float* dz = dXP + off;
    for (int b = 0; b < M; ++b) {
      const float* dyb = dY + off + b * U;
      float* dzb = dz + b * U;
      if (mask_at(mask, t, B, r0 + b) == 0.0f) {
        cr.masked_row(b, U, dyb, zero_out, dzb, U);
        continue;
      }
      const float* y = H + off + b * U;
      float* dhb = cr.dh.data() + b * U;
      float* dcy = cr.dy.data() + b * U;
      float* nb = cr.next.data() + b * U;
      SEQKIT_COLS(U, {
        V yv = ld<V>(y + j);
        st(dzb + j, (ld<V>(dyb + j) + ld<V>(dcy + j) + ld<V>(dhb + j)) * (1.0f - yv * yv));
        st(dcy + j, V{});
        st(nb + j, V{});
      });
    }
    gemm_acc(dz, U, M, RT, cr.next.data(), U);
    cr.dh.swap(cr.next);
  }
  std::copy(cr.dh.begin(), cr.dh.end(), dh0 + static_cast<size_t>(r0) * U);
}

// ------------------------------------------------------------------ LSTM
void lstm_fwd(int T, int B, int U, const float* xp, const float* h0, const float* c0,
              const Packed& R, const float* mask, bool zero_out, float* Y, float* H, float* C,
              float* A, int r0, int r1) {
  const int M = r1 - r0, G = 4 * U;
  std::vector<float> work(A ? 0 : static_cast<size_t>(M) * G);
  for (int t = 0; t < T; ++t) {
    const size_t so = (static_cast<size_t>(t) * B + r0) * U;  // state offset
    float* z = A ? A + (static_cast<size_t>(t) * B + r0) * G : work.data();
    const float* hp = prev_rows(H, h0, t, B, U, r0);
    const float* cp = prev_rows(C, c0, t, B, U, r0);
    std::memcpy(z, xp + (static_cast<size_t>(t) * B + r0) * G, sizeof(float) * M * G);
    gemm_acc(hp, U, M, R, z, G);
    for (int b = 0; b < M; ++b) {
      float* zb = z + b * G;
      const float* cpb = cp + b * U;
      float* cb = C + so + b * U;
      float* hb = H + so + b * U;
      SEQKIT_COLS(U, {
        V i = sigm_(ld<V>(zb + j));
        V f = sigm_(ld<V>(zb + U + j));
        V g = tanh_(ld<V>(zb + 2 * U + j));
        V o = sigm_(ld<V>(zb + 3 * U + j));
        V c = f * ld<V>(cpb + j) + i * g;
        st(cb + j, c);
        st(hb + j, o * tanh_(c));
        st(zb + j, i);
        st(zb + U + j, f);
        st(zb + 2 * U + j, g);
        st(zb + 3 * U + j, o);
      });
    }
    apply_mask_forward(t, B, U, mask, zero_out, hp, H, Y, cp, C, r0, r1);
  }
}

void lstm_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* dcT,
              const float* A, const float* C, const float* c0, const Packed& RT,
              const float* mask, bool zero_out, float* dXP, float* dh0, float* dc0, int r0,
              int r1) {
  const int M = r1 - r0, G = 4 * U;
  Carry cr(dhT, r0, r1, U);
  std::vector<float> dc(dcT + static_cast<size_t>(r0) * U, dcT + static_cast<size_t>(r1) * U);
  for (int t = T - 1; t >= 0; --t) {
    const size_t so = (static_cast<size_t>(t) * B + r0) * U;
    const size_t go = (static_cast<size_t>(t) * B + r0) * G;
    const float* cp = prev_rows(C, c0, t, B, U, r0);
    float* dz = dXP + go;
    for (int b = 0; b < M; ++b) {
      const float* dyb = dY + so + b * U;
      float* dzb = dz + b * G;
      if (mask_at(mask, t, B, r0 + b) == 0.0f) {  // dc passes through unchanged
        cr.masked_row(b, U, dyb, zero_out, dzb, G);
        continue;
      }
      const float* ab = A + go + b * G;
      const float* cb = C + so + b * U;
      const float* cpb = cp + b * U;
      float* dhb = cr.dh.data() + b * U;
      float* dcy = cr.dy.data() + b * U;
      float* nb = cr.next.data() + b * U;
      float* dcb = dc.data() + b * U;
      SEQKIT_COLS(U, {
        V i = ld<V>(ab + j), f = ld<V>(ab + U + j), g = ld<V>(ab + 2 * U + j),
          o = ld<V>(ab + 3 * U + j);
        V gh = ld<V>(dyb + j) + ld<V>(dcy + j) + ld<V>(dhb + j);
        V tc = tanh_(ld<V>(cb + j));
        V dct = ld<V>(dcb + j) + gh * o * (1.0f - tc * tc);
        st(dzb + j, dct * g * i * (1.0f - i));
        st(dzb + U + j, dct * ld<V>(cpb + j) * f * (1.0f - f));
        st(dzb + 2 * U + j, dct * i * (1.0f - g * g));
        st(dzb + 3 * U + j, gh * tc * o * (1.0f - o));
        st(dcb + j, dct * f);
        st(dcy + j, V{});
        st(nb + j, V{});
      });
    }
    gemm_acc(dz, G, M, RT, cr.next.data(), U);
    cr.dh.swap(cr.next);
  }
  std::copy(cr.dh.begin(), cr.dh.end(), dh0 + static_cast<size_t>(r0) * U);
  std::copy(dc.begin(), dc.end(), dc0 + static_cast<size_t>(r0) * U);
}

// ------------------------------------------------------------------ GRU (reset_after)
void gru_fwd(int T, int B, int U, const float* xp, const float* h0, const Packed& R,
             const float* br, const float* mask, bool zero_out, float* Y, float* H, float* S,
             int r0, int r1) {
  const int M = r1 - r0, G = 3 * U;
  std::vector<float> inner(static_cast<size_t>(M) * G);
  for (int t = 0; t < T; ++t) {
    const size_t so = (static_cast<size_t>(t) * B + r0) * U;
    const float* hp = prev_rows(H, h0, t, B, U, r0);
    for (int b = 0; b < M; ++b) std::memcpy(inner.data() + b * G, br, sizeof(float) * G);
    gemm_acc(hp, U, M, R, inner.data(), G);
    for (int b = 0; b < M; ++b) {
      const float* xb = xp + (static_cast<size_t>(t) * B + r0 + b) * G;
      const float* ib = inner.data() + b * G;
      const float* hpb = hp + b * U;
      float* sb = S + (static_cast<size_t>(t) * B + r0 + b) * 4 * U;
      float* hb = H + so + b * U;
      SEQKIT_COLS(U, {
        V z = sigm_(ld<V>(xb + j) + ld<V>(ib + j));
        V r = sigm_(ld<V>(xb + U + j) + ld<V>(ib + U + j));
        V ih = ld<V>(ib + 2 * U + j);
        V hh = tanh_(ld<V>(xb + 2 * U + j) + r * ih);
        st(hb + j, hh + z * (ld<V>(hpb + j) - hh));
        st(sb + j, z);
        st(sb + U + j, r);
        st(sb + 2 * U + j, hh);
        st(sb + 3 * U + j, ih);
      });
    }
    apply_mask_forward(t, B, U, mask, zero_out, hp, H, Y, nullptr, nullptr, r0, r1);
  }
}

void gru_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* S,
             const float* H, const float* h0, const Packed& RT, const float* mask,
             bool zero_out, float* dXP, float* DI, float* dh0, int r0, int r1) {
  const int M = r1 - r0, G = 3 * U;
  Carry cr(dhT, r0, r1, U);
  for (int t = T - 1; t >= 0; --t) {
    const size_t so = (static_cast<size_t>(t) * B + r0) * U;
    const size_t go = (static_cast<size_t>(t) * B + r0) * G;
    const float* hp = prev_rows(H, h0, t, B, U, r0);
    for (int b = 0; b < M; ++b) {
      const float* dyb = dY + so + b * U;
      float* dxb = dXP + go + b * G;
      float* dib = DI + go + b * G;
      if (mask_at(mask, t, B, r0 + b) == 0.0f) {
        std::memset(dib, 0, sizeof(float) * G);
        cr.masked_row(b, U, dyb, zero_out, dxb, G);
        continue;
      }
      const float* sb = S + (static_cast<size_t>(t) * B + r0 + b) * 4 * U;
      const float* hpb = hp + b * U;
      float* dhb = cr.dh.data() + b * U;
      float* dcy = cr.dy.data() + b * U;
      float* nb = cr.next.data() + b * U;
      SEQKIT_COLS(U, {
        V z = ld<V>(sb + j), r = ld<V>(sb + U + j), hh = ld<V>(sb + 2 * U + j),
          ih = ld<V>(sb + 3 * U + j);
        V g = ld<V>(dyb + j) + ld<V>(dcy + j) + ld<V>(dhb + j);
        V dah = g * (1.0f - z) * (1.0f - hh * hh);
        V dsz = g * (ld<V>(hpb + j) - hh) * z * (1.0f - z);
        V dsr = dah * ih * r * (1.0f - r);
        st(dxb + j, dsz);
        st(dxb + U + j, dsr);
        st(dxb + 2 * U + j, dah);
        st(dib + j, dsz);
        st(dib + U + j, dsr);
        st(dib + 2 * U + j, dah * r);
        st(nb + j, g * z);
        st(dcy + j, V{});
      });
    }
    gemm_acc(DI + go, G, M, RT, cr.next.data(), U);
    cr.dh.swap(cr.next);
  }
  std::copy(cr.dh.begin(), cr.dh.end(), dh0 + static_cast<size_t>(r0) * U);
}

// ------------------------------------------------------------------ GRU (reset_after=False)
void gru1_fwd(int T, int B, int U, const float* xp, const float* h0, const Packed& Rzr,
              const Packed& Rh, const float* mask, bool zero_out, float* Y, float* H, float* S,
              int r0, int r1) {
  const int M = r1 - r0, G = 3 * U;
  std::vector<float> zr(static_cast<size_t>(M) * 2 * U), pre(static_cast<size_t>(M) * U),
      rh(static_cast<size_t>(M) * U);
  for (int t = 0; t < T; ++t) {
    const size_t so = (static_cast<size_t>(t) * B + r0) * U;
    const float* hp = prev_rows(H, h0, t, B, U, r0);
    const float* xt = xp + (static_cast<size_t>(t) * B + r0) * G;
    for (int b = 0; b < M; ++b) {
      std::memcpy(zr.data() + b * 2 * U, xt + b * G, sizeof(float) * 2 * U);
      std::memcpy(pre.data() + b * U, xt + b * G + 2 * U, sizeof(float) * U);
    }
    gemm_acc(hp, U, M, Rzr, zr.data(), 2 * U);
    for (int b = 0; b < M; ++b) {
      float* zrb = zr.data() + b * 2 * U;
      const float* hpb = hp + b * U;
      float* rhb = rh.data() + b * U;
      SEQKIT_COLS(2 * U, st(zrb + j, sigm_(ld<V>(zrb + j))));
      SEQKIT_COLS(U, st(rhb + j, ld<V>(zrb + U + j) * ld<V>(hpb + j)));
    }
    gemm_acc(rh.data(), U, M, Rh, pre.data(), U);
    for (int b = 0; b < M; ++b) {
      const float* zrb = zr.data() + b * 2 * U;
      const float* hpb = hp + b * U;
      const float* pb = pre.data() + b * U;
      float* sb = S + (static_cast<size_t>(t) * B + r0 + b) * G;
      float* hb = H + so + b * U;
      std::memcpy(sb, zrb, sizeof(float) * 2 * U);
      SEQKIT_COLS(U, {
        V z = ld<V>(zrb + j);
        V hh = tanh_(ld<V>(pb + j));
        st(sb + 2 * U + j, hh);
        st(hb + j, hh + z * (ld<V>(hpb + j) - hh));
      });
    }
    apply_mask_forward(t, B, U, mask, zero_out, hp, H, Y, nullptr, nullptr, r0, r1);
  }
}

void gru1_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* S,
              const float* H, const float* h0, const Packed& RzrT, const Packed& RhT,
              const float* mask, bool zero_out, float* dXP, float* dh0, int r0, int r1) {
  const int M = r1 - r0, G = 3 * U;
  Carry cr(dhT, r0, r1, U);
  std::vector<float> drh(static_cast<size_t>(M) * U), gz(static_cast<size_t>(M) * U);
  std::vector<char> live(M);
  for (int t = T - 1; t >= 0; --t) {
    const size_t so = (static_cast<size_t>(t) * B + r0) * U;
    const size_t go = (static_cast<size_t>(t) * B + r0) * G;
    const float* hp = prev_rows(H, h0, t, B, U, r0);
    // 1) dah (the candidate's pre-activation gradient) for every live row
    for (int b = 0; b < M; ++b) {
      const float* dyb = dY + so + b * U;
      float* dxb = dXP + go + b * G;
      live[b] = mask_at(mask, t, B, r0 + b) != 0.0f;
      if (!live[b]) {
        cr.masked_row(b, U, dyb, zero_out, dxb, G);
        continue;
      }
      const float* sb = S + go + b * G;
      float* dhb = cr.dh.data() + b * U;
      float* dcy = cr.dy.data() + b * U;
      float* gzb = gz.data() + b * U;
      SEQKIT_COLS(U, {
        V z = ld<V>(sb + j), hh = ld<V>(sb + 2 * U + j);
        V g = ld<V>(dyb + j) + ld<V>(dcy + j) + ld<V>(dhb + j);
        st(dxb + 2 * U + j, g * (1.0f - z) * (1.0f - hh * hh));
        st(gzb + j, g);  // g, kept for step 2
        st(dcy + j, V{});
      });
    }
    // 2) d(r * h) = dah @ R_h^T
    std::fill(drh.begin(), drh.end(), 0.0f);
    gemm_acc(dXP + go + 2 * U, G, M, RhT, drh.data(), U);
    // 3) gate gradients and the direct part of dh_prev
    for (int b = 0; b < M; ++b) {
      if (!live[b]) continue;
      const float* sb = S + go + b * G;
      const float* hpb = hp + b * U;
      const float* drb = drh.data() + b * U;
      const float* gb = gz.data() + b * U;
      float* dxb = dXP + go + b * G;
      float* nb = cr.next.data() + b * U;
      SEQKIT_COLS(U, {
        V z = ld<V>(sb + j), r = ld<V>(sb + U + j), hh = ld<V>(sb + 2 * U + j);
        V g = ld<V>(gb + j), hpv = ld<V>(hpb + j), d = ld<V>(drb + j);
        st(dxb + j, g * (hpv - hh) * z * (1.0f - z));
        st(dxb + U + j, d * hpv * r * (1.0f - r));
        st(nb + j, g * z + d * r);
      });
    }
    // 4) dh_prev += [dz, dr] @ R_zr^T (masked rows: zero gradients, next = dh)
    gemm_acc(dXP + go, G, M, RzrT, cr.next.data(), U);
    cr.dh.swap(cr.next);
  }
  std::copy(cr.dh.begin(), cr.dh.end(), dh0 + static_cast<size_t>(r0) * U);
}

}  // namespace seqkit
