// Whole-sequence recurrences of SimpleRNN, LSTM and GRU (reset_after) as two
// TensorFlow ops: the forward loop and the hand-written BPTT of
// keras_rnn_lab/layers/bptt (whose docstrings write the equations out).
//
// Threads own units, not steps: with P parts, part p owns units [u0, u1) of
// every gate block, computes their columns of the step's matmul (one
// single-threaded GEMM over W packed once, packed_gemm.h; Eigen's thread-pool
// contraction measured slower here at these sizes) and all their elementwise
// work, and the parts meet at one barrier per step, where the next step needs
// every unit of h (forward) or of d_rec (backward).
#include <algorithm>
#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "Eigen/Dense"
#include "packed_gemm.h"

namespace {

using tensorflow::OpKernel;
using tensorflow::OpKernelConstruction;
using tensorflow::OpKernelContext;
using tensorflow::Tensor;
using tensorflow::TensorShape;
using tensorflow::errors::InvalidArgument;
using keras_rnn_lab::DepthSegment;
using keras_rnn_lab::PackedGemm;
using keras_rnn_lab::PackedMatrix;

using RowArray = Eigen::Array<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Block = Eigen::Map<RowArray, 0, Eigen::OuterStride<>>;
using ConstBlock = Eigen::Map<const RowArray, 0, Eigen::OuterStride<>>;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

enum Activation { kTanh, kSigmoid, kRelu, kLinear };
enum Cell { kSimpleRnn, kLstm, kGru };

bool ParseActivation(const std::string& name, Activation* out) {
  if (name == "tanh") *out = kTanh;
  else if (name == "sigmoid") *out = kSigmoid;
  else if (name == "relu") *out = kRelu;
  else if (name == "linear") *out = kLinear;
  else return false;
  return true;
}

// Number of gate blocks of xp (and of W's columns).
int Gates(Cell cell) { return cell == kSimpleRnn ? 1 : (cell == kLstm ? 4 : 3); }

// Units [u0, u0 + n) of block g of a (rows, blocks*units) row-major buffer.
struct Slice {
  int64_t rows, units, u0, n;
  Block of(float* base, int blocks, int g) const {
    return Block(base + g * units + u0, rows, n, Eigen::OuterStride<>(blocks * units));
  }
  ConstBlock of(const float* base, int blocks, int g) const {
    return ConstBlock(base + g * units + u0, rows, n, Eigen::OuterStride<>(blocks * units));
  }
};

// A reusable barrier for the parts of one op: spins (the wait is a few
// microseconds, a step's work), yielding when it spins long.
class Barrier {
 public:
  explicit Barrier(int parts) : parts_(parts) {}
  void Wait() {
    if (parts_ == 1) return;
    const int generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == parts_) {
      arrived_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      return;
    }
    for (int spins = 0; generation_.load(std::memory_order_acquire) == generation; ++spins) {
      if (spins > 4000) std::this_thread::yield();
    }
  }

 private:
  const int parts_;
  std::atomic<int> arrived_{0};
  std::atomic<int> generation_{0};
};

// How many parts share the units: one per core TensorFlow gives this op, at
// most one per 64 units (narrower GEMMs lose more than a core gains).
int Parts(OpKernelContext* ctx, int64_t units) {
  const int threads = ctx->device()->tensorflow_cpu_worker_threads()->num_threads;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({threads, units / 64, 8})));
}

// body(part, slice) on `parts` threads (this one included), each owning its units.
void RunParts(int parts, int64_t rows, int64_t units, const std::function<void(int, const Slice&)>& body) {
  std::vector<std::thread> helpers;
  auto slice = [&](int p) {
    const int64_t u0 = units * p / parts, u1 = units * (p + 1) / parts;
    return Slice{rows, units, u0, u1 - u0};
  };
  for (int p = 1; p < parts; ++p) helpers.emplace_back([&, p] { body(p, slice(p)); });
  body(0, slice(0));
  for (auto& helper : helpers) helper.join();
}

template <typename B>
void Activate(Activation f, B&& a) {
  switch (f) {
    case kTanh: a = a.tanh(); break;
    case kSigmoid: a = a.logistic(); break;
    case kRelu: a = a.max(0.0f); break;
    case kLinear: break;
  }
}

// upstream * f'(a), written from y = f(a).
template <typename U, typename Y>
RowArray TimesDerivative(Activation f, const U& upstream, const Y& y) {
  switch (f) {
    case kTanh: return upstream * (1.0f - y.square());
    case kSigmoid: return upstream * y * (1.0f - y);
    case kRelu: return (y > 0.0f).select(upstream, 0.0f);
    default: return upstream;
  }
}


struct Settings {
  Cell cell;
  Activation activation, recurrent_activation;
  bool lecture_update;

  explicit Settings(OpKernelConstruction* ctx) {
    std::string cell_name, a, ra;
    OP_REQUIRES_OK(ctx, ctx->GetAttr("cell", &cell_name));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("activation", &a));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("recurrent_activation", &ra));
    OP_REQUIRES_OK(ctx, ctx->GetAttr("lecture_update", &lecture_update));
    cell = cell_name == "lstm" ? kLstm : (cell_name == "gru" ? kGru : kSimpleRnn);
    OP_REQUIRES(ctx, ParseActivation(a, &activation), InvalidArgument("unknown activation ", a));
    OP_REQUIRES(ctx, ParseActivation(ra, &recurrent_activation),
                InvalidArgument("unknown recurrent_activation ", ra));
  }
};

const float* DataOrNull(const Tensor& t) { return t.NumElements() > 0 ? t.flat<float>().data() : nullptr; }

// Forward: carried h (time, batch, units), carried C (LSTM, else empty) and the
// activations the backward pass reads (when save_gates; else empty):
//   LSTM  [i, C~, f, o]  GRU [z, r, h~, h W_h + b'_h]
// Its input xp is the projected sequence x U + b (time, batch, gates*units), or,
// given input_kernel U (features, gates*units) and input_bias b, the sequence x
// itself (time, batch, features), projected a step at a time in here: SimpleRNN
// and LSTM as one GEMM per step, [x_t, h_{t-1}] times [U; W] (neither the
// projected sequence's write nor its re-read); GRU, whose reset gate scales h W_h
// alone, as a second GEMM per step into this part's columns.
class RecurrenceForward : public OpKernel {
 public:
  explicit RecurrenceForward(OpKernelConstruction* ctx) : OpKernel(ctx), s_(ctx) {
    OP_REQUIRES_OK(ctx, ctx->GetAttr("save_gates", &save_gates_));
  }

  void Compute(OpKernelContext* ctx) override {
    const Tensor& xp = ctx->input(0);
    const Tensor& h0 = ctx->input(1);
    const Tensor& c0 = ctx->input(2);
    const Tensor& w = ctx->input(3);
    const Tensor& bias = ctx->input(4);
    const Tensor& r = ctx->input(5);
    const Tensor& m = ctx->input(6);
    const Tensor& input_kernel = ctx->input(7);
    const Tensor& input_bias = ctx->input(8);
    const int gates = Gates(s_.cell);
    OP_REQUIRES(ctx, xp.dims() == 3 && h0.dims() == 2 && w.dims() == 2,
                InvalidArgument("xp (time, batch, gates*units), h0 (batch, units), w (units, gates*units)"));
    const int64_t T = xp.dim_size(0), B = xp.dim_size(1), U = h0.dim_size(1), GU = gates * U;
    const bool project = input_kernel.NumElements() > 0;  // xp is x, projected in here
    const int64_t F = project ? input_kernel.dim_size(0) : 0, xp_width = project ? F : GU;
    OP_REQUIRES(ctx, xp.dim_size(2) == xp_width && h0.dim_size(0) == B && w.dim_size(0) == U && w.dim_size(1) == GU,
                InvalidArgument("shapes disagree: xp ", xp.shape().DebugString(), ", h0 ",
                                h0.shape().DebugString(), ", w ", w.shape().DebugString()));
    OP_REQUIRES(ctx, !project || (input_kernel.dims() == 2 && input_kernel.dim_size(1) == GU),
                InvalidArgument("input_kernel must be (features, gates*units)"));
    OP_REQUIRES(ctx, input_bias.NumElements() == 0 || (project && input_bias.NumElements() == GU),
                InvalidArgument("input_bias must be (gates*units,), with input_kernel"));
    const bool has_r = r.NumElements() > 0, has_m = m.NumElements() > 0, has_bias = bias.NumElements() > 0;
    OP_REQUIRES(ctx, !has_r || r.NumElements() == B * U, InvalidArgument("r must be (batch, units)"));
    OP_REQUIRES(ctx, !has_m || m.NumElements() == T * B, InvalidArgument("m must be (time, batch, 1)"));
    OP_REQUIRES(ctx, s_.cell != kLstm || c0.NumElements() == B * U, InvalidArgument("c0 must be (batch, units)"));
    OP_REQUIRES(ctx, s_.cell != kGru || !has_bias || bias.NumElements() == GU,
                InvalidArgument("recurrent bias must be (gates*units,)"));

    Tensor *h_out, *c_out, *gates_out;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({T, B, U}), &h_out));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({s_.cell == kLstm ? T : 0, B, U}), &c_out));
    const int saved_blocks = s_.cell == kSimpleRnn ? 0 : 4;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({save_gates_ ? T : 0, B, saved_blocks * U}), &gates_out));
    // h_in = h_{t-1} * r, double-buffered so a part can write step t's while another still reads t-1's.
    Tensor h_in_t;
    OP_REQUIRES_OK(ctx, ctx->allocate_temp(tensorflow::DT_FLOAT, TensorShape({2, B, U}), &h_in_t));

    const float *xp_p = xp.flat<float>().data(), *w_p = w.flat<float>().data(), *h0_p = h0.flat<float>().data();
    const float *r_p = DataOrNull(r), *m_p = DataOrNull(m), *c0_p = DataOrNull(c0), *b_p = DataOrNull(bias);
    const float *u_p = DataOrNull(input_kernel), *bu_p = DataOrNull(input_bias);
    float* h_p = h_out->flat<float>().data();
    float* c_p = s_.cell == kLstm ? c_out->flat<float>().data() : nullptr;
    float* g_p = save_gates_ ? gates_out->flat<float>().data() : nullptr;
    float* h_in_p = h_in_t.flat<float>().data();
    const Settings s = s_;
    const bool save = save_gates_;
    const int parts = Parts(ctx, U);
    Barrier barrier(parts);

    RunParts(parts, B, U, [&](int, const Slice& sl) {
      const int64_t n = sl.n;
      RowArray c_act(B, n), z(B, n), reset(B, n);
      auto own = [&](const float* base) { return sl.of(base, 1, 0); };  // this part's units of a (B, U) buffer
      auto own_w = [&](float* base) { return sl.of(base, 1, 0); };
      // W's (and b''s) columns of this part's units, every gate block side by
      // side: one wide GEMM per step instead of one narrow one per block.
      std::vector<int64_t> w_column(gates * n);  // column of W behind each packed column
      for (int64_t col = 0; col < gates * n; ++col) w_column[col] = (col / n) * U + sl.u0 + col % n;
      // Projecting in here: SimpleRNN and LSTM stack U's columns above W's (depth
      // F + U); GRU packs them apart (u_part) for their own GEMM.
      const bool x_in_a = project && s.cell != kGru;
      const int64_t w_depth = x_in_a ? F + U : U, w_from = x_in_a ? F : 0;
      PackedMatrix w_part, u_part;
      w_part.Pack(w_depth, gates * n, [&](int64_t k, int64_t col) {
        return k < w_from ? u_p[k * GU + w_column[col]] : w_p[(k - w_from) * GU + w_column[col]];
      });
      if (project && !x_in_a) u_part.Pack(F, gates * n, [&](int64_t k, int64_t col) { return u_p[k * GU + w_column[col]]; });
      RowMatrix a_part(B, gates * n), x_part(project && !x_in_a ? B : 0, gates * n);
      Eigen::Matrix<float, 1, Eigen::Dynamic> b_part(gates * n), bu_part(gates * n);
      for (int g = 0; g < gates; ++g) {
        if (b_p != nullptr) b_part.segment(g * n, n) = Eigen::Map<const Eigen::VectorXf>(b_p + g * U + sl.u0, n);
        if (bu_p != nullptr) bu_part.segment(g * n, n) = Eigen::Map<const Eigen::VectorXf>(bu_p + g * U + sl.u0, n);
      }
      auto pa = [&](int g) { return Block(a_part.data() + g * n, B, n, Eigen::OuterStride<>(gates * n)); };
      if (has_r) own_w(h_in_p) = own(h0_p) * sl.of(r_p, 1, 0);
      barrier.Wait();
      for (int64_t t = 0; t < T; ++t) {
        const float* h_prev = t == 0 ? h0_p : h_p + (t - 1) * B * U;
        const float* h_mul = has_r ? h_in_p + (t % 2) * B * U : h_prev;
        const float* x_t = xp_p + t * B * xp_width;
        // This part's columns of a = h_in W (+ b'), one GEMM over its packed
        // columns; projecting SimpleRNN or LSTM in here, a = x_t U + h_in W + b.
        const DepthSegment a_rows[2] = {{x_t, F, 0, F}, {h_mul, U, w_from, w_depth}};
        PackedGemm(x_in_a ? a_rows : a_rows + 1, x_in_a ? 2 : 1, B, w_part, a_part.data(), gates * n);
        if (s.cell == kGru && b_p != nullptr) a_part.array().rowwise() += b_part.array();
        if (x_in_a && bu_p != nullptr) a_part.array().rowwise() += bu_part.array();
        if (project && !x_in_a) {  // GRU: this part's columns of x_t U + b
          PackedGemm(x_t, F, B, u_part, x_part.data(), gates * n);
          if (bu_p != nullptr) x_part.array().rowwise() += bu_part.array();
        }
        // Gate block g of this step's projected input, for the parts not in a.
        auto xb = [&](int g) {
          return project ? ConstBlock(x_part.data() + g * n, B, n, Eigen::OuterStride<>(gates * n))
                         : sl.of(x_t, gates, g);
        };
        Block h_new = own_w(h_p + t * B * U);
        if (s.cell == kSimpleRnn) {
          Block pre = pa(0);
          if (!x_in_a) pre += xb(0);
          Activate(s.activation, pre);
          h_new = pre;
        } else if (s.cell == kLstm) {
          Block i = pa(0), cand = pa(1), f = pa(2), o = pa(3);
          if (!x_in_a) {
            i += xb(0);
            cand += xb(1);
            f += xb(2);
            o += xb(3);
          }
          Activate(s.recurrent_activation, i);
          Activate(s.activation, cand);
          Activate(s.recurrent_activation, f);
          Activate(s.recurrent_activation, o);
          const float* c_prev = t == 0 ? c0_p : c_p + (t - 1) * B * U;
          Block c_new = own_w(c_p + t * B * U);
          c_new = f * own(c_prev) + i * cand;
          c_act = c_new;
          Activate(s.activation, c_act);
          h_new = o * c_act;
          if (save) {
            float* g = g_p + t * B * GU;
            for (int k = 0; k < 4; ++k) sl.of(g, 4, k) = pa(k);
          }
        } else {  // GRU, reset_after: a = h_in W + b'
          Block rec_h = pa(2);
          z = xb(0) + pa(0);
          reset = xb(1) + pa(1);
          Activate(s.recurrent_activation, z);
          Activate(s.recurrent_activation, reset);
          c_act = xb(2) + reset * rec_h;  // the candidate h~
          Activate(s.activation, c_act);
          if (s.lecture_update) h_new = own(h_prev) + z * (c_act - own(h_prev));
          else h_new = c_act + z * (own(h_prev) - c_act);
          if (save) {
            float* g = g_p + t * B * 4 * U;
            sl.of(g, 4, 0) = z;
            sl.of(g, 4, 1) = reset;
            sl.of(g, 4, 2) = c_act;
            sl.of(g, 4, 3) = rec_h;
          }
        }
        if (has_m) {  // masked rows carry the state over
          for (int64_t b = 0; b < B; ++b) {
            if (m_p[t * B + b] > 0.0f) continue;
            h_new.row(b) = own(h_prev).row(b);
            if (s.cell == kLstm) own_w(c_p + t * B * U).row(b) = own(t == 0 ? c0_p : c_p + (t - 1) * B * U).row(b);
          }
        }
        if (has_r) own_w(h_in_p + ((t + 1) % 2) * B * U) = h_new * sl.of(r_p, 1, 0);
        barrier.Wait();  // step t+1 reads every unit of h_t
      }
    });
  }

 private:
  Settings s_;
  bool save_gates_;
};

// Backward, given the gradients of the forward op's h and C sequences:
// dxp (time, batch, gates*units), the gradient of the recurrent
// pre-activations d_rec (GRU: [da_z, da_r, da_h r]; empty otherwise, where it
// equals dxp), dh0 and dC0 (LSTM, else empty).  dW = sum_t h_in^T d_rec is one
// large matmul after the op (in Python).
class RecurrenceBackward : public OpKernel {
 public:
  explicit RecurrenceBackward(OpKernelConstruction* ctx) : OpKernel(ctx), s_(ctx) {}

  void Compute(OpKernelContext* ctx) override {
    const Tensor& w = ctx->input(0);
    const Tensor& r = ctx->input(1);
    const Tensor& m = ctx->input(2);
    const Tensor& h0 = ctx->input(3);
    const Tensor& c0 = ctx->input(4);
    const Tensor& h = ctx->input(5);
    const Tensor& c = ctx->input(6);
    const Tensor& saved = ctx->input(7);
    const Tensor& dh_seq = ctx->input(8);
    const Tensor& dc_seq = ctx->input(9);
    const int gates = Gates(s_.cell);
    OP_REQUIRES(ctx, h.dims() == 3, InvalidArgument("h must be (time, batch, units)"));
    const int64_t T = h.dim_size(0), B = h.dim_size(1), U = h.dim_size(2), GU = gates * U;
    const bool has_r = r.NumElements() > 0, has_m = m.NumElements() > 0, has_dc = dc_seq.NumElements() > 0;
    OP_REQUIRES(ctx, w.dim_size(0) == U && w.dim_size(1) == GU, InvalidArgument("w must be (units, gates*units)"));
    OP_REQUIRES(ctx, dh_seq.NumElements() == T * B * U, InvalidArgument("dh_sequence must be like h"));
    OP_REQUIRES(ctx, s_.cell == kSimpleRnn || saved.NumElements() == T * B * 4 * U,
                InvalidArgument("saved gates must be (time, batch, 4*units)"));
    OP_REQUIRES(ctx, s_.cell != kLstm || (c.NumElements() == T * B * U && (!has_dc || dc_seq.NumElements() == T * B * U)),
                InvalidArgument("c and dc_sequence must be like h"));

    Tensor *dxp_t, *drec_t, *dh0_t, *dc0_t;
    OP_REQUIRES_OK(ctx, ctx->allocate_output(0, TensorShape({T, B, GU}), &dxp_t));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(1, TensorShape({s_.cell == kGru ? T : 0, B, GU}), &drec_t));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(2, TensorShape({B, U}), &dh0_t));
    OP_REQUIRES_OK(ctx, ctx->allocate_output(3, TensorShape({s_.cell == kLstm ? B : 0, U}), &dc0_t));

    const float *r_p = DataOrNull(r), *m_p = DataOrNull(m), *h_p = h.flat<float>().data();
    const float *w_p = w.flat<float>().data(), *h0_p = h0.flat<float>().data(), *c0_p = DataOrNull(c0);
    const float *c_p = DataOrNull(c), *g_all = DataOrNull(saved), *dseq_p = DataOrNull(dh_seq);
    const float* dcseq_p = DataOrNull(dc_seq);
    float* dh0_p = dh0_t->flat<float>().data();
    float* dc0_p = s_.cell == kLstm ? dc0_t->flat<float>().data() : nullptr;
    float* dxp_all = dxp_t->flat<float>().data();
    float* drec_all = s_.cell == kGru ? drec_t->flat<float>().data() : dxp_all;
    const Settings s = s_;
    const int parts = Parts(ctx, U);
    Barrier barrier(parts);

    RunParts(parts, B, U, [&](int, const Slice& sl) {
      const int64_t n = sl.n;
      auto own = [&](const float* base) { return sl.of(base, 1, 0); };
      // This part's units of dh and dC reaching the step (each part keeps its own).
      RowArray dh = RowArray::Zero(B, n), dc = RowArray::Zero(B, n);
      RowArray keep = RowArray::Ones(B, 1), dh_eff(B, n), dc_eff(B, n), c_act(B, n), dC(B, n), direct(B, n);
      RowArray dz(B, n), d_cand(B, n), da_h(B, n), dh_prev(B, n);
      // W's rows u0..u0+n, transposed: d_rec_t W^T's columns for this part's units.
      PackedMatrix w_rows_t;
      w_rows_t.Pack(GU, n, [&](int64_t k, int64_t col) { return w_p[(sl.u0 + col) * GU + k]; });
      for (int64_t t = T - 1; t >= 0; --t) {
        dh += own(dseq_p + t * B * U);  // the gradients of the outputs h_t and C_t
        if (has_dc) dc += own(dcseq_p + t * B * U);
        if (has_m) keep = Eigen::Map<const RowArray>(m_p + t * B, B, 1);
        // Masked rows (keep 0) pass dh (and dC) straight to t-1.
        dh_eff = has_m ? RowArray(dh.colwise() * keep.col(0)) : dh;
        const float* h_prev = t == 0 ? h0_p : h_p + (t - 1) * B * U;
        float* dxp = dxp_all + t * B * GU;
        float* d_rec = drec_all + t * B * GU;
        if (s.cell == kSimpleRnn) {
          sl.of(dxp, 1, 0) = TimesDerivative(s.activation, dh_eff, own(h_p + t * B * U));
        } else if (s.cell == kLstm) {
          const float* g = g_all + t * B * GU;
          ConstBlock i = sl.of(g, 4, 0), cand = sl.of(g, 4, 1), f = sl.of(g, 4, 2), o = sl.of(g, 4, 3);
          c_act = own(c_p + t * B * U);
          Activate(s.activation, c_act);
          dc_eff = has_m ? RowArray(dc.colwise() * keep.col(0)) : dc;
          dC = dc_eff + TimesDerivative(s.activation, dh_eff * o, c_act);
          sl.of(dxp, 4, 0) = TimesDerivative(s.recurrent_activation, dC * cand, i);
          sl.of(dxp, 4, 1) = TimesDerivative(s.activation, dC * i, cand);
          sl.of(dxp, 4, 2) = TimesDerivative(s.recurrent_activation, dC * own(t == 0 ? c0_p : c_p + (t - 1) * B * U), f);
          sl.of(dxp, 4, 3) = TimesDerivative(s.recurrent_activation, dh_eff * c_act, o);
          if (has_m) dc = dC * f + dc.colwise() * (1.0f - keep.col(0));
          else dc = dC * f;
        } else {
          const float* g = g_all + t * B * 4 * U;
          ConstBlock z = sl.of(g, 4, 0), reset = sl.of(g, 4, 1), cand = sl.of(g, 4, 2), rec_h = sl.of(g, 4, 3);
          if (s.lecture_update) {
            d_cand = dh_eff * z;
            dz = dh_eff * (cand - own(h_prev));
            direct = dh_eff - d_cand;
          } else {
            direct = dh_eff * z;
            dz = dh_eff * (own(h_prev) - cand);
            d_cand = dh_eff - direct;
          }
          da_h = TimesDerivative(s.activation, d_cand, cand);
          sl.of(dxp, 3, 0) = TimesDerivative(s.recurrent_activation, dz, z);
          sl.of(dxp, 3, 1) = TimesDerivative(s.recurrent_activation, da_h * rec_h, reset);
          sl.of(dxp, 3, 2) = da_h;
          sl.of(d_rec, 3, 0) = sl.of(dxp, 3, 0);
          sl.of(d_rec, 3, 1) = sl.of(dxp, 3, 1);
          sl.of(d_rec, 3, 2) = da_h * reset;
        }
        barrier.Wait();  // the matmul below reads every unit of d_rec_t
        PackedGemm(d_rec, GU, B, w_rows_t, dh_prev.data(), n);  // this part's units of d_rec W^T
        if (has_r) dh_prev *= sl.of(r_p, 1, 0);
        if (s.cell == kGru) dh_prev += direct;
        if (has_m) dh_prev += dh.colwise() * (1.0f - keep.col(0));
        dh = dh_prev;
        // No barrier here: the next step's elementwise work reads only this
        // part's units, and writes d_rec_{t-1}, not the d_rec_t others still read.
      }
      sl.of(dh0_p, 1, 0) = dh;
      if (s.cell == kLstm) sl.of(dc0_p, 1, 0) = dc;
    });
  }

 private:
  Settings s_;
};

}  // namespace

REGISTER_OP("KerasRnnLabRecurrence")
    .Input("xp: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("w: float")
    .Input("recurrent_bias: float")
    .Input("recurrent_mask: float")
    .Input("step_mask: float")
    .Input("input_kernel: float")
    .Input("input_bias: float")
    .Output("h: float")
    .Output("c: float")
    .Output("gates: float")
    .Attr("cell: {'simple_rnn', 'lstm', 'gru'}")
    .Attr("activation: string")
    .Attr("recurrent_activation: string")
    .Attr("lecture_update: bool = false")
    .Attr("save_gates: bool = true")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      std::string cell;
      bool save_gates;
      TF_RETURN_IF_ERROR(c->GetAttr("cell", &cell));
      TF_RETURN_IF_ERROR(c->GetAttr("save_gates", &save_gates));
      auto xp = c->input(0), h0 = c->input(1);
      auto time = c->Dim(xp, 0), batch = c->Dim(xp, 1), units = c->Dim(h0, 1);
      tensorflow::shape_inference::DimensionHandle saved_width;
      TF_RETURN_IF_ERROR(c->Multiply(units, cell == "simple_rnn" ? 0 : 4, &saved_width));
      c->set_output(0, c->MakeShape({time, batch, units}));
      c->set_output(1, c->MakeShape({cell == "lstm" ? time : c->MakeDim(0), batch, units}));
      c->set_output(2, c->MakeShape({save_gates ? time : c->MakeDim(0), batch, saved_width}));
      return absl::OkStatus();
    });

REGISTER_OP("KerasRnnLabRecurrenceGrad")
    .Input("w: float")
    .Input("recurrent_mask: float")
    .Input("step_mask: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("h: float")
    .Input("c: float")
    .Input("gates: float")
    .Input("dh_sequence: float")
    .Input("dc_sequence: float")
    .Output("dxp: float")
    .Output("d_recurrent: float")
    .Output("dh0: float")
    .Output("dc0: float")
    .Attr("cell: {'simple_rnn', 'lstm', 'gru'}")
    .Attr("activation: string")
    .Attr("recurrent_activation: string")
    .Attr("lecture_update: bool = false")
    .SetShapeFn([](tensorflow::shape_inference::InferenceContext* c) {
      std::string cell;
      TF_RETURN_IF_ERROR(c->GetAttr("cell", &cell));
      auto w = c->input(0), h = c->input(5);
      auto time = c->Dim(h, 0), batch = c->Dim(h, 1), units = c->Dim(h, 2), width = c->Dim(w, 1);
      c->set_output(0, c->MakeShape({time, batch, width}));
      c->set_output(1, c->MakeShape({cell == "gru" ? time : c->MakeDim(0), batch, width}));
      c->set_output(2, c->MakeShape({batch, units}));
      c->set_output(3, c->MakeShape({cell == "lstm" ? batch : c->MakeDim(0), units}));
      return absl::OkStatus();
    });

REGISTER_KERNEL_BUILDER(Name("KerasRnnLabRecurrence").Device(tensorflow::DEVICE_CPU), RecurrenceForward);
REGISTER_KERNEL_BUILDER(Name("KerasRnnLabRecurrenceGrad").Device(tensorflow::DEVICE_CPU), RecurrenceBackward);
