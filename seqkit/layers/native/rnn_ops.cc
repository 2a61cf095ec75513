// TensorFlow ops over the seqkit native recurrent kernels (CPU, float32).
//
// Each op runs its time loop once per shard of batch rows, the shards in
// parallel on TensorFlow's intra-op thread pool. Shapes are checked here
// (InvalidArgument); the Python side only calls these ops with shapes it
// built itself.
#include <algorithm>
#include <functional>

#include "absl/synchronization/blocking_counter.h"
#include "rnn_kernels.h"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace seqkit {
namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
namespace errors = tensorflow::errors;

// Runs fn(r0, r1) over shards of [0, B) rows in parallel.
void for_shards(OpKernelContext* ctx, int B, const std::function<void(int, int)>& fn) {
  auto* workers = ctx->device()->tensorflow_cpu_worker_threads();
  const int threads = workers ? workers->num_threads : 1;
  const int unit = tile_rows();
  int shards = std::max(1, std::min(threads, B / std::max(unit, 8)));
  const int per = (B + shards - 1) / shards;
  const int per_aligned = (per + unit - 1) / unit * unit;
  std::vector<std::pair<int, int>> ranges;
  for (int r0 = 0; r0 < B; r0 += per_aligned) ranges.emplace_back(r0, std::min(B, r0 + per_aligned));
  if (ranges.empty()) return;  // an empty batch
  if (ranges.size() == 1) {
    fn(0, B);
    return;
  }
  absl::BlockingCounter counter(static_cast<int>(ranges.size()) - 1);
  for (size_t s = 1; s < ranges.size(); ++s) {
    workers->workers->Schedule([&fn, &counter, r = ranges[s]] {
      fn(r.first, r.second);
      counter.DecrementCount();
    });
  }
  fn(ranges[0].first, ranges[0].second);
  counter.Wait();
}

struct PackedGuard {
  Packed p;
  ~PackedGuard() { free_packed(&p); }
};

// Common sizes from xp (T, B, G) and R (U, G).
struct Dims {
  int T, B, U, G;
};

bool dims_from(OpKernelContext* ctx, const Tensor& x, const Tensor& R, int gates, Dims* d) {
  if (x.dims() != 3 || R.dims() != 2) {
    ctx->CtxFailure(errors::InvalidArgument("seqkit native: expected (T, B, G) and (U, G), got ",
                                            x.shape().DebugString(), " and ",
                                            R.shape().DebugString()));
    return false;
  }
  d->T = static_cast<int>(x.dim_size(0));
  d->B = static_cast<int>(x.dim_size(1));
  d->G = static_cast<int>(x.dim_size(2));
  d->U = static_cast<int>(R.dim_size(0));
  if (R.dim_size(1) != d->G || d->G != gates * d->U) {
    ctx->CtxFailure(errors::InvalidArgument("seqkit native: gate widths disagree: ",
                                            x.shape().DebugString(), " vs ",
                                            R.shape().DebugString()));
    return false;
  }
  return true;
}

bool check_state(OpKernelContext* ctx, const Tensor& s, const Dims& d, const char* name) {
  if (s.dims() != 2 || s.dim_size(0) != d.B || s.dim_size(1) != d.U) {
    ctx->CtxFailure(errors::InvalidArgument("seqkit native: ", name, " must be (", d.B, ", ", d.U,
                                            "), got ", s.shape().DebugString()));
    return false;
  }
  return true;
}

Tensor* out(OpKernelContext* ctx, int i, std::initializer_list<int64_t> dims) {
  Tensor* t = nullptr;
  TensorShape shape;
  for (auto v : dims) shape.AddDim(v);
  auto status = ctx->allocate_output(i, shape, &t);
  if (!status.ok()) {
    ctx->CtxFailure(status);
    return nullptr;
  }
  return t;
}

const float* f(const Tensor& t) { return t.flat<float>().data(); }
float* f(Tensor* t) { return t->flat<float>().data(); }

// The mask input: (T, B) of 0 / 1 floats, or an empty vector for no mask.
bool mask_from(OpKernelContext* ctx, const Tensor& m, const Dims& d, const float** out) {
  if (m.dims() == 1 && m.dim_size(0) == 0) {
    *out = nullptr;
    return true;
  }
  if (m.dims() != 2 || m.dim_size(0) != d.T || m.dim_size(1) != d.B) {
    ctx->CtxFailure(errors::InvalidArgument("seqkit native: mask must be (", d.T, ", ", d.B,
                                            ") or empty, got ", m.shape().DebugString()));
    return false;
  }
  *out = f(m);
  return true;
}

// Forward outputs Y and H: H is a separate (T, B, U) tensor only with a mask.
bool outputs_yh(OpKernelContext* ctx, const Dims& d, const float* mask, float** Y, float** H) {
  Tensor* y = out(ctx, 0, {d.T, d.B, d.U});
  Tensor* h = out(ctx, 1, {mask ? d.T : 0, d.B, d.U});
  if (!y || !h) return false;
  *Y = f(y);
  *H = mask ? f(h) : *Y;
  return true;
}

// Base of every op here: all take the `zero_out` attribute (masked steps
// output zeros instead of repeating the previous output).
class RnnOp : public OpKernel {
 public:
  explicit RnnOp(OpKernelConstruction* c) : OpKernel(c) {
    OP_REQUIRES_OK(c, c->GetAttr("zero_out", &zero_out_));
  }

 protected:
  bool zero_out_;
};

// The checked inputs of a forward op whose inputs are (xp, h0, R, mask), and its
// outputs Y and H.
struct FwdArgs {
  Dims d;
  const float *x, *h0, *R, *mask;
  float *Y, *H;
};

// Base of those forward ops (SimpleRNN, GRU reset_after=False): Compute checks the
// inputs, allocates Y and H and calls the op's run(ctx, a). Static dispatch (CRTP):
// no virtual call, the same work as writing the checks in each op.
template <class Op, int kGates>
class FwdOp : public RnnOp {
 public:
  using RnnOp::RnnOp;
  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &h0 = ctx->input(1), &R = ctx->input(2),
                 &m = ctx->input(3);
    FwdArgs a;
    if (!dims_from(ctx, x, R, kGates, &a.d) || !check_state(ctx, h0, a.d, "h0") ||
        !mask_from(ctx, m, a.d, &a.mask) || !outputs_yh(ctx, a.d, a.mask, &a.Y, &a.H))
      return;
    a.x = f(x);
    a.h0 = f(h0);
    a.R = f(R);
    static_cast<Op*>(this)->run(ctx, a);
  }
};

// ------------------------------------------------------------------ SimpleRNN
class SimpleFwd : public FwdOp<SimpleFwd, 1> {
 public:
  using FwdOp::FwdOp;
  void run(OpKernelContext* ctx, const FwdArgs& a) {
    const Dims& d = a.d;
    PackedGuard P;
    pack_b(a.R, d.U, d.G, false, &P.p);
    for_shards(ctx, d.B, [&](int r0, int r1) {
      simple_fwd(d.T, d.B, d.U, a.x, a.h0, P.p, a.mask, zero_out_, a.Y, a.H, r0, r1);
    });
  }
};

class SimpleBwd : public RnnOp {
 public:
  using RnnOp::RnnOp;
  void Compute(OpKernelContext* ctx) override {
    const Tensor &dY = ctx->input(0), &dhT = ctx->input(1), &H = ctx->input(2),
                 &R = ctx->input(3), &m = ctx->input(4);
    Dims d;
    const float* mask;
    if (!dims_from(ctx, dY, R, 1, &d) || !check_state(ctx, dhT, d, "dhT") ||
        !mask_from(ctx, m, d, &mask))
      return;
    OP_REQUIRES(ctx, H.shape() == dY.shape(), errors::InvalidArgument("seqkit native: H shape"));
    Tensor* dXP = out(ctx, 0, {d.T, d.B, d.G});
    Tensor* dh0 = out(ctx, 1, {d.B, d.U});
    if (!dXP || !dh0) return;
    PackedGuard P;
    pack_b(f(R), d.G, d.U, true, &P.p);
    for_shards(ctx, d.B, [&](int r0, int r1) {
      simple_bwd(d.T, d.B, d.U, f(dY), f(dhT), f(H), P.p, mask, zero_out_, f(dXP), f(dh0), r0,
                 r1);
    });
  }
};

// ------------------------------------------------------------------ LSTM
class LstmFwd : public RnnOp {
 public:
  explicit LstmFwd(OpKernelConstruction* c) : RnnOp(c) {
    OP_REQUIRES_OK(c, c->GetAttr("save_gates", &save_));
  }
  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &h0 = ctx->input(1), &c0 = ctx->input(2),
                 &R = ctx->input(3), &m = ctx->input(4);
    Dims d;
    const float* mask;
    float *Y, *H;
    if (!dims_from(ctx, x, R, 4, &d) || !check_state(ctx, h0, d, "h0") ||
        !check_state(ctx, c0, d, "c0") || !mask_from(ctx, m, d, &mask) ||
        !outputs_yh(ctx, d, mask, &Y, &H))
      return;
    Tensor* C = out(ctx, 2, {d.T, d.B, d.U});
    Tensor* A = out(ctx, 3, {save_ ? d.T : 0, d.B, d.G});
    if (!C || !A) return;
    PackedGuard P;
    pack_b(f(R), d.U, d.G, false, &P.p);
    float* a = save_ ? f(A) : nullptr;
    for_shards(ctx, d.B, [&](int r0, int r1) {
      lstm_fwd(d.T, d.B, d.U, f(x), f(h0), f(c0), P.p, mask, zero_out_, Y, H, f(C), a, r0, r1);
    });
  }

 private:
  bool save_;
};

class LstmBwd : public RnnOp {
 public:
  using RnnOp::RnnOp;
  void Compute(OpKernelContext* ctx) override {
    const Tensor &dY = ctx->input(0), &dhT = ctx->input(1), &dcT = ctx->input(2),
                 &A = ctx->input(3), &C = ctx->input(4), &c0 = ctx->input(5), &R = ctx->input(6),
                 &m = ctx->input(7);
    OP_REQUIRES(ctx, A.dims() == 3, errors::InvalidArgument("seqkit native: A rank"));
    Dims d;
    const float* mask;
    if (!dims_from(ctx, A, R, 4, &d) || !check_state(ctx, dhT, d, "dhT") ||
        !check_state(ctx, dcT, d, "dcT") || !check_state(ctx, c0, d, "c0") ||
        !mask_from(ctx, m, d, &mask))
      return;
    OP_REQUIRES(ctx, dY.dims() == 3 && dY.dim_size(0) == d.T && dY.dim_size(1) == d.B &&
                         dY.dim_size(2) == d.U && C.shape() == dY.shape(),
                errors::InvalidArgument("seqkit native: dY / C shapes"));
    Tensor* dXP = out(ctx, 0, {d.T, d.B, d.G});
    Tensor* dh0 = out(ctx, 1, {d.B, d.U});
    Tensor* dc0 = out(ctx, 2, {d.B, d.U});
    if (!dXP || !dh0 || !dc0) return;
    PackedGuard P;
    pack_b(f(R), d.G, d.U, true, &P.p);
    for_shards(ctx, d.B, [&](int r0, int r1) {
      lstm_bwd(d.T, d.B, d.U, f(dY), f(dhT), f(dcT), f(A), f(C), f(c0), P.p, mask, zero_out_,
               f(dXP), f(dh0), f(dc0), r0, r1);
    });
  }
};

// ------------------------------------------------------------------ GRU
class GruFwd : public RnnOp {
 public:
  using RnnOp::RnnOp;
  void Compute(OpKernelContext* ctx) override {
    const Tensor &x = ctx->input(0), &h0 = ctx->input(1), &R = ctx->input(2),
                 &br = ctx->input(3), &m = ctx->input(4);
    Dims d;
    const float* mask;
    float *Y, *H;
    if (!dims_from(ctx, x, R, 3, &d) || !check_state(ctx, h0, d, "h0") ||
        !mask_from(ctx, m, d, &mask))
      return;
    OP_REQUIRES(ctx, br.dims() == 1 && br.dim_size(0) == d.G,
                errors::InvalidArgument("seqkit native: br must be (", d.G, ",)"));
    if (!outputs_yh(ctx, d, mask, &Y, &H)) return;
    Tensor* S = out(ctx, 2, {d.T, d.B, 4 * d.U});
    if (!S) return;
    PackedGuard P;
    pack_b(f(R), d.U, d.G, false, &P.p);
    for_shards(ctx, d.B, [&](int r0, int r1) {
      gru_fwd(d.T, d.B, d.U, f(x), f(h0), P.p, f(br), mask, zero_out_, Y, H, f(S), r0, r1);
    });
  }
};

class GruBwd : public RnnOp {
 public:
  using RnnOp::RnnOp;
  void Compute(OpKernelContext* ctx) override {
    const Tensor &dY = ctx->input(0), &dhT = ctx->input(1), &S = ctx->input(2),
                 &H = ctx->input(3), &h0 = ctx->input(4), &R = ctx->input(5), &m = ctx->input(6);
    OP_REQUIRES(ctx, dY.dims() == 3 && R.dims() == 2,
                errors::InvalidArgument("seqkit native: dY / R rank"));
    Dims d{static_cast<int>(dY.dim_size(0)), static_cast<int>(dY.dim_size(1)),
           static_cast<int>(R.dim_size(0)), static_cast<int>(R.dim_size(1))};
    OP_REQUIRES(ctx, d.G == 3 * d.U && dY.dim_size(2) == d.U && H.shape() == dY.shape() &&
                         S.dims() == 3 && S.dim_size(0) == d.T && S.dim_size(1) == d.B &&
                         S.dim_size(2) == 4 * d.U,
                errors::InvalidArgument("seqkit native: GRU backward shapes"));
    const float* mask;
    if (!check_state(ctx, dhT, d, "dhT") || !check_state(ctx, h0, d, "h0") ||
        !mask_from(ctx, m, d, &mask))
      return;
    Tensor* dXP = out(ctx, 0, {d.T, d.B, d.G});
    Tensor* DI = out(ctx, 1, {d.T, d.B, d.G});
    Tensor* dh0 = out(ctx, 2, {d.B, d.U});
    if (!dXP || !DI || !dh0) return;
    PackedGuard P;
    pack_b(f(R), d.G, d.U, true, &P.p);
    for_shards(ctx, d.B, [&](int r0, int r1) {
      gru_bwd(d.T, d.B, d.U, f(dY), f(dhT), f(S), f(H), f(h0), P.p, mask, zero_out_, f(dXP),
              f(DI), f(dh0), r0, r1);
    });
  }
};

// ------------------------------------------------------------------ GRU, reset_after=False
class Gru1Fwd : public FwdOp<Gru1Fwd, 3> {
 public:
  using FwdOp::FwdOp;
  void run(OpKernelContext* ctx, const FwdArgs& a) {
    const Dims& d = a.d;
    Tensor* S = out(ctx, 2, {d.T, d.B, d.G});
    if (!S) return;
    PackedGuard Pzr, Ph;
    pack_b_ld(a.R, d.U, 2 * d.U, d.G, false, &Pzr.p);
    pack_b_ld(a.R + 2 * d.U, d.U, d.U, d.G, false, &Ph.p);
    for_shards(ctx, d.B, [&](int r0, int r1) {
      gru1_fwd(d.T, d.B, d.U, a.x, a.h0, Pzr.p, Ph.p, a.mask, zero_out_, a.Y, a.H, f(S), r0, r1);
    });
  }
};

class Gru1Bwd : public RnnOp {
 public:
  using RnnOp::RnnOp;
  void Compute(OpKernelContext* ctx) override {
    const Tensor &dY = ctx->input(0), &dhT = ctx->input(1), &S = ctx->input(2),
                 &H = ctx->input(3), &h0 = ctx->input(4), &R = ctx->input(5), &m = ctx->input(6);
    Dims d;
    const float* mask;
    if (!dims_from(ctx, S, R, 3, &d) || !check_state(ctx, dhT, d, "dhT") ||
        !check_state(ctx, h0, d, "h0") || !mask_from(ctx, m, d, &mask))
      return;
    OP_REQUIRES(ctx, dY.dims() == 3 && dY.dim_size(0) == d.T && dY.dim_size(1) == d.B &&
                         dY.dim_size(2) == d.U && H.shape() == dY.shape(),
                errors::InvalidArgument("seqkit native: GRU backward shapes"));
    Tensor* dXP = out(ctx, 0, {d.T, d.B, d.G});
    Tensor* dh0 = out(ctx, 1, {d.B, d.U});
    if (!dXP || !dh0) return;
    PackedGuard PzrT, PhT;
    pack_b_ld(f(R), 2 * d.U, d.U, d.G, true, &PzrT.p);
    pack_b_ld(f(R) + 2 * d.U, d.U, d.U, d.G, true, &PhT.p);
    for_shards(ctx, d.B, [&](int r0, int r1) {
      gru1_bwd(d.T, d.B, d.U, f(dY), f(dhT), f(S), f(H), f(h0), PzrT.p, PhT.p, mask, zero_out_,
               f(dXP), f(dh0), r0, r1);
    });
  }
};

}  // namespace
}  // namespace seqkit

// Used only from seqkit's Python side, eagerly or inside tf.function on CPU,
// never in an exported graph (the Python side sets the static shapes).
// `mask` is (T, B) of 0 / 1 or an empty vector; `h` (the states) is empty
// without a mask, where the outputs `y` are the states.
REGISTER_OP("SeqkitSimpleFwd").Attr("zero_out: bool").Input("xp: float").Input("h0: float")
    .Input("r: float").Input("mask: float").Output("y: float").Output("h: float");
REGISTER_OP("SeqkitSimpleBwd").Attr("zero_out: bool").Input("dy: float").Input("dht: float")
    .Input("h: float").Input("r: float").Input("mask: float").Output("dxp: float")
    .Output("dh0: float");
REGISTER_OP("SeqkitLstmFwd").Attr("save_gates: bool").Attr("zero_out: bool")
    .Input("xp: float").Input("h0: float").Input("c0: float").Input("r: float")
    .Input("mask: float").Output("y: float").Output("h: float").Output("c: float")
    .Output("a: float");
REGISTER_OP("SeqkitLstmBwd").Attr("zero_out: bool").Input("dy: float").Input("dht: float")
    .Input("dct: float").Input("a: float").Input("c: float").Input("c0: float")
    .Input("r: float").Input("mask: float").Output("dxp: float").Output("dh0: float")
    .Output("dc0: float");
REGISTER_OP("SeqkitGruFwd").Attr("zero_out: bool").Input("xp: float").Input("h0: float")
    .Input("r: float").Input("br: float").Input("mask: float").Output("y: float")
    .Output("h: float").Output("s: float");
REGISTER_OP("SeqkitGruBwd").Attr("zero_out: bool").Input("dy: float").Input("dht: float")
    .Input("s: float").Input("h: float").Input("h0: float").Input("r: float")
    .Input("mask: float").Output("dxp: float").Output("di: float").Output("dh0: float");

REGISTER_OP("SeqkitGru1Fwd").Attr("zero_out: bool").Input("xp: float").Input("h0: float")
    .Input("r: float").Input("mask: float").Output("y: float").Output("h: float")
    .Output("s: float");
REGISTER_OP("SeqkitGru1Bwd").Attr("zero_out: bool").Input("dy: float").Input("dht: float")
    .Input("s: float").Input("h: float").Input("h0: float").Input("r: float")
    .Input("mask: float").Output("dxp: float").Output("dh0: float");

REGISTER_KERNEL_BUILDER(Name("SeqkitSimpleFwd").Device(tensorflow::DEVICE_CPU), seqkit::SimpleFwd);
REGISTER_KERNEL_BUILDER(Name("SeqkitSimpleBwd").Device(tensorflow::DEVICE_CPU), seqkit::SimpleBwd);
REGISTER_KERNEL_BUILDER(Name("SeqkitLstmFwd").Device(tensorflow::DEVICE_CPU), seqkit::LstmFwd);
REGISTER_KERNEL_BUILDER(Name("SeqkitLstmBwd").Device(tensorflow::DEVICE_CPU), seqkit::LstmBwd);
REGISTER_KERNEL_BUILDER(Name("SeqkitGruFwd").Device(tensorflow::DEVICE_CPU), seqkit::GruFwd);
REGISTER_KERNEL_BUILDER(Name("SeqkitGruBwd").Device(tensorflow::DEVICE_CPU), seqkit::GruBwd);
REGISTER_KERNEL_BUILDER(Name("SeqkitGru1Fwd").Device(tensorflow::DEVICE_CPU), seqkit::Gru1Fwd);
REGISTER_KERNEL_BUILDER(Name("SeqkitGru1Bwd").Device(tensorflow::DEVICE_CPU), seqkit::Gru1Bwd);
