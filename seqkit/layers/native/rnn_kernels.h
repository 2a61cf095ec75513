// seqkit native recurrent kernels: plain C++, no TensorFlow headers.
//
// Row-range functions: each runs the whole time loop for batch rows [r0, r1),
// so shards of the batch run on separate threads with no synchronization per
// step (rows of a batch never interact in a recurrence).
//
// Layouts (row-major, float32): xp / dXP (T, B, G), Y / C (T, B, U),
// states (B, U), recurrent kernel R (U, G), where G = gates * U.
#pragma once
#include <cstdint>

namespace seqkit {

// A (K x N) matrix packed into column panels for the GEMM microkernel.
struct Packed {
  float* data = nullptr;
  int K = 0, N = 0;
};

// Packs B (K x N, row-major). With transpose, `B` is given as N x K row-major
// and B^T is packed.
void pack_b(const float* B, int K, int N, bool transpose, Packed* out);
// The same for a block of a wider matrix: rows of `B` are `ldb` apart.
void pack_b_ld(const float* B, int K, int N, int ldb, bool transpose, Packed* out);
void free_packed(Packed* p);
// C[M, N] += A[M, K] @ P  (A with row stride lda, C with row stride ldc).
void gemm_acc(const float* A, int lda, int M, const Packed& P, float* C, int ldc);
// Rows per microkernel tile (shards are multiples of this when they can be).
int tile_rows();

// Masks: `mask` is (T, B) of 0 / 1, or null. A masked step keeps the states
// and outputs the previous output (zeros with zero_out), as Keras does. The
// forward pass writes the states H apart from the outputs Y when there is a
// mask; without one H is Y (the same buffer).

// ---- SimpleRNN (tanh)
void simple_fwd(int T, int B, int U, const float* xp, const float* h0, const Packed& R,
                const float* mask, bool zero_out, float* Y, float* H, int r0, int r1);
void simple_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* H,
                const Packed& RT, const float* mask, bool zero_out, float* dXP, float* dh0,
                int r0, int r1);

// ---- LSTM (gates i, f, g, o; sigmoid / tanh). A (T, B, 4U) may be null
// (inference: gates not kept); C (T, B, U) holds the cell states.
void lstm_fwd(int T, int B, int U, const float* xp, const float* h0, const float* c0,
              const Packed& R, const float* mask, bool zero_out, float* Y, float* H, float* C,
              float* A, int r0, int r1);
void lstm_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* dcT,
              const float* A, const float* C, const float* c0, const Packed& RT,
              const float* mask, bool zero_out, float* dXP, float* dh0, float* dc0, int r0,
              int r1);

// ---- GRU, reset_after=True (gates z, r, h). S (T, B, 4U) keeps z, r, hh and
// the recurrent candidate part i_h; DI (T, B, 3U) is d(h @ R + br).
void gru_fwd(int T, int B, int U, const float* xp, const float* h0, const Packed& R,
             const float* br, const float* mask, bool zero_out, float* Y, float* H, float* S,
             int r0, int r1);
void gru_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* S,
             const float* H, const float* h0, const Packed& RT, const float* mask,
             bool zero_out, float* dXP, float* DI, float* dh0, int r0, int r1);

// ---- GRU, reset_after=False: hh = tanh(x_h + (r * h) @ R_h), no recurrent
// bias. Rzr / Rh are the packed column blocks of R (U x 3U); S (T, B, 3U)
// keeps z, r and hh. RzrT / RhT are their transposes for the backward pass.
void gru1_fwd(int T, int B, int U, const float* xp, const float* h0, const Packed& Rzr,
              const Packed& Rh, const float* mask, bool zero_out, float* Y, float* H, float* S,
              int r0, int r1);
void gru1_bwd(int T, int B, int U, const float* dY, const float* dhT, const float* S,
              const float* H, const float* h0, const Packed& RzrT, const Packed& RhT,
              const float* mask, bool zero_out, float* dXP, float* dh0, int r0, int r1);

}  // namespace seqkit
