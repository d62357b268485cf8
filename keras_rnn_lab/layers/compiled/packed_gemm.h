// C = A B for the recurrences' per-step matmuls, where B (the recurrent
// kernel W, or its transpose) is the same matrix at every step of a sequence.
//
// So B is packed once per op call into panels of two registers' width of
// columns (each panel k-major: row r of the panel is B[r, P p : P p + P], zero
// past B's last column), and every step runs a register-tiled FMA micro-kernel
// over it:
//   C[i, P p + j] = sum_k A[i, k] B_panel_p[k, j],  kRows rows i at a time,
// 2 kRows accumulators, one broadcast of A and two loads of B per k.
// With AVX-512 (built with -march=native on a CPU that has it) a register holds
// 16 floats, P = 32 and kRows = 8; with AVX2 and FMA 8 floats, P = 16 and
// kRows = 6.  Eigen's general product packs both operands again at every call;
// with B packed once the AVX2 kernel ran 1.3-1.8x faster than it at the
// recurrences' step shapes (batch 7-64, depth 64-2048, 128-1024 columns; one
// core, 2026-12-02), and on a CPU with AVX-512 the AVX-512 kernel ran 1.6-1.9x
// the AVX2 one (64 rows, depth 256-640, 512-2048 columns: 137-159 against
// 70-84 GFLOP/s on one core, 2026-12-02).  Without AVX2 and FMA the same
// interface runs Eigen's product.
#ifndef KERAS_RNN_LAB_PACKED_GEMM_H_
#define KERAS_RNN_LAB_PACKED_GEMM_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__AVX512F__) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#define KERAS_RNN_LAB_PACKED_SIMD 1
#else
#include "Eigen/Dense"
#endif

namespace keras_rnn_lab {

#ifdef KERAS_RNN_LAB_PACKED_SIMD
// The micro-kernel's vector operations, for the widest instruction set built for.
#ifdef __AVX512F__
struct Simd {
  using Vec = __m512;
  static constexpr int kLanes = 16;
  static constexpr int kRows = 8;  // 16 of the 32 registers accumulate; batches of 32 and 64 split evenly
  static Vec Zero() { return _mm512_setzero_ps(); }
  static Vec Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec Broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static Vec MultiplyAdd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec Add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
};
#else
struct Simd {
  using Vec = __m256;
  static constexpr int kLanes = 8;
  static constexpr int kRows = 6;  // 12 accumulators of the 16 registers
  static Vec Zero() { return _mm256_setzero_ps(); }
  static Vec Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  static Vec Broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Vec MultiplyAdd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static Vec Add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
};
#endif
constexpr int64_t kPanel = 2 * Simd::kLanes;  // columns per packed panel: two registers
#endif

// B (depth, columns), packed.  Pack(depth, columns, element) reads element(r, c).
class PackedMatrix {
 public:
  template <typename Element>
  void Pack(int64_t depth, int64_t columns, Element element) {
    depth_ = depth, columns_ = columns;
#ifdef KERAS_RNN_LAB_PACKED_SIMD
    const int64_t panels = (columns + kPanel - 1) / kPanel;
    data_.assign(panels * depth * kPanel, 0.0f);
    for (int64_t p = 0; p < panels; ++p)
      for (int64_t r = 0; r < depth; ++r)
        for (int64_t j = 0; j < kPanel && p * kPanel + j < columns; ++j)
          data_[(p * depth + r) * kPanel + j] = element(r, p * kPanel + j);
#else
    data_.resize(depth * columns);
    for (int64_t r = 0; r < depth; ++r)
      for (int64_t c = 0; c < columns; ++c) data_[r * columns + c] = element(r, c);
#endif
  }

  int64_t depth() const { return depth_; }
  int64_t columns() const { return columns_; }
  const float* data() const { return data_.data(); }

 private:
  int64_t depth_ = 0, columns_ = 0;
  std::vector<float> data_;
};

// Where rows of A come from for packed depth [k_begin, k_end): A may be two
// matrices side by side ([x_t, h_{t-1}] against [W_x; W]) without copying
// them into one; row i, depth k reads a[i * lda + k - k_begin].
struct DepthSegment {
  const float* a;
  int64_t lda, k_begin, k_end;
};

#ifdef KERAS_RNN_LAB_PACKED_SIMD
// Rows [row, row + MR) of C's panel columns [0, cols) = A's rows times depth
// k0..k1 of the panel (accumulate: added to C), every segment's part of that
// depth into the same accumulators.  The accumulators are two plain arrays
// indexed by unrolled constants: one 2-D array of them made GCC 12 keep a copy
// on the stack and store it every iteration (half the speed).
template <int MR>
inline void MicroKernel(const DepthSegment* segments, int count, int64_t row, const float* panel, int64_t k0,
                        int64_t k1, float* c, int64_t ldc, int64_t cols, bool accumulate) {
  constexpr int kLanes = Simd::kLanes;
  Simd::Vec lo[MR], hi[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) lo[i] = hi[i] = Simd::Zero();
  for (int s = 0; s < count; ++s) {
    const DepthSegment& segment = segments[s];
    const int64_t begin = std::max(k0, segment.k_begin), end = std::min(k1, segment.k_end);
    const int64_t lda = segment.lda;
    const float* a = segment.a + row * lda - segment.k_begin;
    const float* b = panel + begin * kPanel;
    for (int64_t k = begin; k < end; ++k, b += kPanel) {
      const Simd::Vec b0 = Simd::Load(b), b1 = Simd::Load(b + kLanes);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const Simd::Vec ai = Simd::Broadcast(a + i * lda + k);
        lo[i] = Simd::MultiplyAdd(ai, b0, lo[i]);
        hi[i] = Simd::MultiplyAdd(ai, b1, hi[i]);
      }
    }
  }
  if (cols == kPanel) {  // a full panel: straight from the registers (most calls)
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      float* c_row = c + (row + i) * ldc;
      if (accumulate) {
        lo[i] = Simd::Add(lo[i], Simd::Load(c_row));
        hi[i] = Simd::Add(hi[i], Simd::Load(c_row + kLanes));
      }
      Simd::Store(c_row, lo[i]);
      Simd::Store(c_row + kLanes, hi[i]);
    }
    return;
  }
  float tile[MR][kPanel];  // the last, partial panel: its columns one by one
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    Simd::Store(tile[i], lo[i]);
    Simd::Store(tile[i] + kLanes, hi[i]);
  }
  for (int i = 0; i < MR; ++i) {
    float* c_row = c + (row + i) * ldc;
    if (accumulate) {
      for (int64_t j = 0; j < cols; ++j) c_row[j] += tile[i][j];
    } else {
      for (int64_t j = 0; j < cols; ++j) c_row[j] = tile[i][j];
    }
  }
}

// The last rows - i < kRows rows: the micro-kernel of exactly that many.
template <int MR>
inline void RemainingRows(int64_t left, const DepthSegment* segments, int count, int64_t row, const float* panel,
                          int64_t k0, int64_t k1, float* c, int64_t ldc, int64_t cols, bool accumulate) {
  if constexpr (MR > 0) {
    if (left == MR) MicroKernel<MR>(segments, count, row, panel, k0, k1, c, ldc, cols, accumulate);
    else RemainingRows<MR - 1>(left, segments, count, row, panel, k0, k1, c, ldc, cols, accumulate);
  }
}
#endif

// C (rows, b.columns()) = A B, row-major with row stride ldc, where the
// segments (in depth order, covering [0, b.depth())) supply A's rows.
inline void PackedGemm(const DepthSegment* segments, int count, int64_t rows, const PackedMatrix& b, float* c,
                       int64_t ldc) {
#ifdef KERAS_RNN_LAB_PACKED_SIMD
  // Depth in slices of 256, so a panel's slice (16 KB; 32 KB with AVX-512) stays in L1 across the
  // row blocks; the slices after the first add to C.
  constexpr int64_t kDepthSlice = 256;
  const int64_t panels = (b.columns() + kPanel - 1) / kPanel;
  for (int64_t k0 = 0; k0 < b.depth(); k0 += kDepthSlice) {
    const int64_t k1 = std::min(b.depth(), k0 + kDepthSlice);
    const bool accumulate = k0 > 0;
    for (int64_t p = 0; p < panels; ++p) {
      const float* panel = b.data() + p * b.depth() * kPanel;
      const int64_t cols = std::min(kPanel, b.columns() - p * kPanel);
      float* c_panel = c + p * kPanel;
      constexpr int kRows = Simd::kRows;
      int64_t i = 0;
      for (; i + kRows <= rows; i += kRows)
        MicroKernel<kRows>(segments, count, i, panel, k0, k1, c_panel, ldc, cols, accumulate);
      RemainingRows<kRows - 1>(rows - i, segments, count, i, panel, k0, k1, c_panel, ldc, cols, accumulate);
    }
  }
#else
  using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using View = Eigen::Map<RowMatrix, 0, Eigen::OuterStride<>>;
  using ConstView = Eigen::Map<const RowMatrix, 0, Eigen::OuterStride<>>;
  View product(c, rows, b.columns(), Eigen::OuterStride<>(ldc));
  const ConstView all_b(b.data(), b.depth(), b.columns(), Eigen::OuterStride<>(b.columns()));
  for (int s = 0; s < count; ++s) {
    const DepthSegment& segment = segments[s];
    const int64_t depth = segment.k_end - segment.k_begin;
    const ConstView a(segment.a, rows, depth, Eigen::OuterStride<>(segment.lda));
    if (s == 0) product.noalias() = a * all_b.middleRows(segment.k_begin, depth);
    else product.noalias() += a * all_b.middleRows(segment.k_begin, depth);
  }
#endif
}

// C (rows, b.columns()) = A (rows, b.depth()) B, row-major with row strides
// lda and ldc.
inline void PackedGemm(const float* a, int64_t lda, int64_t rows, const PackedMatrix& b, float* c, int64_t ldc) {
  const DepthSegment whole{a, lda, 0, b.depth()};
  PackedGemm(&whole, 1, rows, b, c, ldc);
}

}  // namespace keras_rnn_lab

#endif  // KERAS_RNN_LAB_PACKED_GEMM_H_
