// Per-example DropConnect on the CPU (sparsebench.nn.dropconnect_kernel builds this file on first use).
//
// Example b's mask on weight (o, i) of a (rows x cols) weight is drawn from 64-bit words of a
// counter-based generator: word n = splitmix64(key + (n + 1) * golden), n = (b * rows + o) * wpr + j.
// 1-bit mode (keep probability 1/2): element i is kept when bit i % 64 of word i / 64 is set.
// 16-bit mode: element i is kept when 16-bit field i % 4 of word i / 4 is below `threshold`.
// sparsebench/nn/dropconnect.py computes the same words with torch ops (the GPU path and the tests'
// reference): both must stay bit-identical.
//
// Why a kernel of our own: the masked product has the dense layer's multiply-adds, but PyTorch can only
// express it by materialising masks or masked weights (batch x rows x cols values, several passes over
// memory); here each example's mask is regenerated per weight row in registers (the forward and the
// backward pass draw the same words from the same counters) and applied by masked AVX-512 loads, or on
// a CPU with AVX2 and FMA but no AVX-512 (AMD before Zen 4, many clouds' hosts) by 8-lane loads ANDed
// with the mask's lanes; elsewhere by a scalar loop (correct, about 100x slower).
// The headers of what is used, not torch/extension.h (all of libtorch's C++ API): the first build, which
// every fresh checkout and CI run pays, took 35 s of CPU and 1.7 GB of compiler with it, 15 s and 0.9 GB so.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/sum.h>
#include <torch/csrc/utils/pybind.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cstdint>
#include <vector>
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && defined(__AVX512DQ__)
#include <immintrin.h>
#define SB_AVX512 1
#elif defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SB_AVX2 1
#endif

namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

inline uint64_t mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

#if defined(SB_AVX2)
// a * b mod 2^64 per lane, b given as its low (bl) and high (bh) 32 bits in each lane
inline __m256i mul64(__m256i a, __m256i bl, __m256i bh) {
  const __m256i cross = _mm256_add_epi64(_mm256_mul_epu32(_mm256_srli_epi64(a, 32), bl), _mm256_mul_epu32(a, bh));
  return _mm256_add_epi64(_mm256_mul_epu32(a, bl), _mm256_slli_epi64(cross, 32));
}
#endif

// words[j] for j < count, counters first, first + 1, ...
inline void fill_words(uint64_t key, uint64_t first, int64_t count, uint64_t* words) {
  int64_t j = 0;
#ifdef SB_AVX512
  const __m512i step = _mm512_set_epi64(8, 7, 6, 5, 4, 3, 2, 1);
  const __m512i golden = _mm512_set1_epi64((long long)kGolden);
  const __m512i c1 = _mm512_set1_epi64((long long)0xBF58476D1CE4E5B9ULL);
  const __m512i c2 = _mm512_set1_epi64((long long)0x94D049BB133111EBULL);
  const __m512i k = _mm512_set1_epi64((long long)key);
  for (; j + 8 <= count; j += 8) {
    __m512i n = _mm512_add_epi64(_mm512_set1_epi64((long long)(first + j)), step);  // n + 1
    __m512i z = _mm512_add_epi64(k, _mm512_mullo_epi64(n, golden));
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 30)), c1);
    z = _mm512_mullo_epi64(_mm512_xor_si512(z, _mm512_srli_epi64(z, 27)), c2);
    z = _mm512_xor_si512(z, _mm512_srli_epi64(z, 31));
    _mm512_storeu_si512((void*)(words + j), z);
  }
#elif defined(SB_AVX2)
  // AVX2 has no 64-bit multiply: each product is built from three 32 x 32 -> 64-bit ones (mul64). Still
  // about twice the scalar loop's words per cycle, whose multiplies share one port.
  const __m256i c1l = _mm256_set1_epi64x((long long)0xBF58476D1CE4E5B9ULL), c1h = _mm256_srli_epi64(c1l, 32);
  const __m256i c2l = _mm256_set1_epi64x((long long)0x94D049BB133111EBULL), c2h = _mm256_srli_epi64(c2l, 32);
  const uint64_t z0 = key + (first + 1) * kGolden;
  __m256i z = _mm256_set_epi64x((long long)(z0 + 3 * kGolden), (long long)(z0 + 2 * kGolden),
                                (long long)(z0 + kGolden), (long long)z0);
  const __m256i step = _mm256_set1_epi64x((long long)(4 * kGolden));  // the counters advance by 4
  for (; j + 4 <= count; j += 4, z = _mm256_add_epi64(z, step)) {
    __m256i v = mul64(_mm256_xor_si256(z, _mm256_srli_epi64(z, 30)), c1l, c1h);
    v = mul64(_mm256_xor_si256(v, _mm256_srli_epi64(v, 27)), c2l, c2h);
    _mm256_storeu_si256((__m256i*)(words + j), _mm256_xor_si256(v, _mm256_srli_epi64(v, 31)));
  }
#endif
  for (; j < count; ++j) words[j] = mix(key + (first + j + 1) * kGolden);
}

struct Layout {
  int64_t rows, cols, wpr, chunks;  // chunks: 16-element groups per row
  bool one_bit;
  uint16_t tail;  // the valid lanes of the last chunk
  uint16_t threshold;
  int64_t padded_words() const { return ((one_bit ? wpr : 4 * chunks) + 7) / 8 * 8; }
  // uint16 masks stored per row: room for the 1-bit mode's words, a multiple of 32 (64-byte rows)
  int64_t row_masks() const { return one_bit ? 4 * padded_words() : (chunks + 31) / 32 * 32; }
};

Layout layout(int64_t rows, int64_t cols, int64_t threshold) {
  Layout l;
  l.rows = rows;
  l.cols = cols;
  l.one_bit = threshold == 32768;
  l.wpr = l.one_bit ? (cols + 63) / 64 : (cols + 3) / 4;
  l.chunks = (cols + 15) / 16;
  l.threshold = (uint16_t)threshold;
  const int64_t valid = cols - 16 * (l.chunks - 1);
  l.tail = (uint16_t)(valid == 16 ? 0xFFFF : (1u << valid) - 1);
  return l;
}

// The keep mask of row (b, o) as one 16-bit mask per 16 elements, into `masks` (l.row_masks() values;
// bits past cols are arbitrary: the kernels load and store with the tail mask). In 1-bit mode the
// words themselves are the masks; in 16-bit mode `words` is scratch.
inline void row_masks(const Layout& l, uint64_t key, int64_t b, int64_t o, uint64_t* words, uint16_t* masks) {
  const uint64_t first = (uint64_t)((b * l.rows + o) * l.wpr);
  if (l.one_bit) {
    fill_words(key, first, l.padded_words(), reinterpret_cast<uint64_t*>(masks));
    return;
  }
  fill_words(key, first, l.padded_words(), words);
  const uint16_t* fields = reinterpret_cast<const uint16_t*>(words);
#ifdef SB_AVX512
  const __m256i t = _mm256_set1_epi16((short)l.threshold);
  for (int64_t c = 0; c < l.chunks; ++c)
    masks[c] = (uint16_t)_mm256_cmplt_epu16_mask(_mm256_loadu_si256((const __m256i*)(fields + 16 * c)), t);
#elif defined(SB_AVX2)
  // AVX2 compares 16-bit lanes as signed only: both sides shifted by 2^15 keep the unsigned order.
  const __m256i flip = _mm256_set1_epi16((short)0x8000);
  const __m256i t = _mm256_set1_epi16((short)(l.threshold ^ 0x8000));
  for (int64_t c = 0; c < l.chunks; ++c) {
    const __m256i f = _mm256_xor_si256(_mm256_loadu_si256((const __m256i*)(fields + 16 * c)), flip);
    const __m256i kept = _mm256_cmpgt_epi16(t, f);
    // packed to bytes within each 128-bit half, [0-7 0-7 | 8-15 8-15]: bits 0-7 and 16-23 of the movemask
    const unsigned bits = (unsigned)_mm256_movemask_epi8(_mm256_packs_epi16(kept, kept));
    masks[c] = (uint16_t)((bits & 0xFF) | ((bits >> 8) & 0xFF00));
  }
#else
  for (int64_t c = 0; c < l.chunks; ++c) {
    uint16_t m = 0;
    for (int t = 0; t < 16; ++t) m |= (uint16_t)(fields[16 * c + t] < l.threshold) << t;
    masks[c] = m;
  }
#endif
}

#ifdef SB_AVX2
// Lane masks of 8 floats for each 8-bit keep mask (all ones where the bit is set): one load per use.
struct LaneTable {
  alignas(32) int32_t v[256][8];
  LaneTable() {
    for (int m = 0; m < 256; ++m)
      for (int i = 0; i < 8; ++i) v[m][i] = (m >> i) & 1 ? -1 : 0;
  }
};
const LaneTable kLanes;

inline __m256 lanes(unsigned bits) { return _mm256_load_ps(reinterpret_cast<const float*>(kLanes.v[bits & 0xFF])); }

// 8 floats from p; past the valid lanes (the row's end) nothing is read and zeros come back.
inline __m256 load8(const float* p, unsigned valid) {
  return valid == 0xFF ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, _mm256_castps_si256(lanes(valid)));
}

// Lanes [at, at + 8) of four weight rows.
struct Rows4 {
  __m256 w0, w1, w2, w3;
};

inline Rows4 load_rows(const float* const* wr, int64_t at, unsigned valid) {
  return {load8(wr[0] + at, valid), load8(wr[1] + at, valid), load8(wr[2] + at, valid), load8(wr[3] + at, valid)};
}

inline void store8(float* p, __m256 v, unsigned valid) {
  if (valid == 0xFF)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, _mm256_castps_si256(lanes(valid)), v);
}

inline float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
#endif

}  // namespace

constexpr int64_t kTileFloats = 32768;  // a tile of x and one of grad_x, 128 KB each: half a Zen 2 L2
constexpr int kBlock = 4;  // weight rows per block: each input vector loaded serves four rows (the vector loops below are written out for 4 rows and 2 examples)

// The masks of rows (b, o0 .. o0 + kBlock - 1) into masks[j * chunks + c]; rows past `count`, and rows
// whose `skip` is set, get empty masks.
inline void block_masks(const Layout& l, uint64_t key, int64_t b, int64_t o0, int count, const bool* skip,
                        uint64_t* words, uint16_t* masks) {
  #pragma GCC unroll 8
  for (int j = 0; j < kBlock; ++j) {
    if (j < count && !(skip && skip[j]))
      row_masks(l, key, b, o0 + j, words, masks + j * l.row_masks());
    else
      std::fill(masks + j * l.row_masks(), masks + (j + 1) * l.row_masks(), (uint16_t)0);
  }
}

// y[b, o] = sum_i x[b, i] w[o, i] m[b, o, i] (unscaled)
at::Tensor forward(at::Tensor x, at::Tensor w, int64_t key, int64_t threshold) {
  const int64_t batch = x.size(0), rows = w.size(0), cols = w.size(1);
  auto y = at::empty({batch, rows}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const Layout l = layout(rows, cols, threshold);
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  constexpr int kPair = 2;  // examples per step: eight independent accumulators hide the FMA latency
  at::parallel_for(0, blocks, 2, [&](int64_t begin, int64_t end) {
    std::vector<uint64_t> words(l.padded_words());
    std::vector<uint16_t> masks(kPair * kBlock * l.row_masks());
    const int64_t stride = l.row_masks();
    for (int64_t blk = begin; blk < end; ++blk) {
      const int64_t o0 = blk * kBlock;
      const int count = (int)std::min<int64_t>(kBlock, rows - o0);
      const float* wr[kBlock];
      #pragma GCC unroll 8
      for (int j = 0; j < kBlock; ++j) wr[j] = wp + (o0 + std::min(j, count - 1)) * cols;
      for (int64_t b = 0; b < batch; b += kPair) {
        const int pair = (int)std::min<int64_t>(kPair, batch - b);
        const float* xe[kPair];
        #pragma GCC unroll 8
        for (int e = 0; e < kPair; ++e) {
          xe[e] = xp + (b + std::min(e, pair - 1)) * cols;
          if (e < pair) block_masks(l, (uint64_t)key, b + e, o0, count, nullptr, words.data(),
                                    masks.data() + e * kBlock * stride);
        }
#ifdef SB_AVX512
        // Named accumulators: GCC keeps arrays of vectors on the stack here (a store and a load per FMA).
        __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
               a13 = a00;
        const uint16_t* m0 = masks.data();
        const uint16_t* m1 = m0 + kBlock * stride;
        for (int64_t c = 0; c < l.chunks; ++c) {
          const __mmask16 tm = c == l.chunks - 1 ? l.tail : (__mmask16)0xFFFF;
          const __m512 w0 = _mm512_maskz_loadu_ps(tm, wr[0] + 16 * c), w1 = _mm512_maskz_loadu_ps(tm, wr[1] + 16 * c),
                       w2 = _mm512_maskz_loadu_ps(tm, wr[2] + 16 * c), w3 = _mm512_maskz_loadu_ps(tm, wr[3] + 16 * c);
          const __m512 x0 = _mm512_maskz_loadu_ps(tm, xe[0] + 16 * c), x1 = _mm512_maskz_loadu_ps(tm, xe[1] + 16 * c);
          a00 = _mm512_mask3_fmadd_ps(x0, w0, a00, m0[c]);
          a01 = _mm512_mask3_fmadd_ps(x0, w1, a01, m0[stride + c]);
          a02 = _mm512_mask3_fmadd_ps(x0, w2, a02, m0[2 * stride + c]);
          a03 = _mm512_mask3_fmadd_ps(x0, w3, a03, m0[3 * stride + c]);
          a10 = _mm512_mask3_fmadd_ps(x1, w0, a10, m1[c]);
          a11 = _mm512_mask3_fmadd_ps(x1, w1, a11, m1[stride + c]);
          a12 = _mm512_mask3_fmadd_ps(x1, w2, a12, m1[2 * stride + c]);
          a13 = _mm512_mask3_fmadd_ps(x1, w3, a13, m1[3 * stride + c]);
        }
        const __m512 acc[kPair][kBlock] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}};
        for (int e = 0; e < pair; ++e)
          for (int j = 0; j < count; ++j) yp[(b + e) * rows + o0 + j] = _mm512_reduce_add_ps(acc[e][j]);
#elif defined(SB_AVX2)
        // Each 16-element chunk as two halves of 8 lanes; the keep mask's byte for a half selects its lanes.
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,
               a13 = a00;
        const uint16_t* m0 = masks.data();
        const uint16_t* m1 = m0 + kBlock * stride;
        for (int64_t c = 0; c < l.chunks; ++c) {
          const unsigned tm = c == l.chunks - 1 ? l.tail : 0xFFFFu;
          for (int h = 0; h < 2; ++h) {
            const unsigned valid = (tm >> (8 * h)) & 0xFF;
            if (!valid) continue;
            const int64_t at = 16 * c + 8 * h;
            const int sh = 8 * h;
            const auto [w0, w1, w2, w3] = load_rows(wr, at, valid);
            const __m256 x0 = load8(xe[0] + at, valid), x1 = load8(xe[1] + at, valid);
            a00 = _mm256_fmadd_ps(x0, _mm256_and_ps(w0, lanes(m0[c] >> sh)), a00);
            a01 = _mm256_fmadd_ps(x0, _mm256_and_ps(w1, lanes(m0[stride + c] >> sh)), a01);
            a02 = _mm256_fmadd_ps(x0, _mm256_and_ps(w2, lanes(m0[2 * stride + c] >> sh)), a02);
            a03 = _mm256_fmadd_ps(x0, _mm256_and_ps(w3, lanes(m0[3 * stride + c] >> sh)), a03);
            a10 = _mm256_fmadd_ps(x1, _mm256_and_ps(w0, lanes(m1[c] >> sh)), a10);
            a11 = _mm256_fmadd_ps(x1, _mm256_and_ps(w1, lanes(m1[stride + c] >> sh)), a11);
            a12 = _mm256_fmadd_ps(x1, _mm256_and_ps(w2, lanes(m1[2 * stride + c] >> sh)), a12);
            a13 = _mm256_fmadd_ps(x1, _mm256_and_ps(w3, lanes(m1[3 * stride + c] >> sh)), a13);
          }
        }
        const __m256 acc[kPair][kBlock] = {{a00, a01, a02, a03}, {a10, a11, a12, a13}};
        for (int e = 0; e < pair; ++e)
          for (int j = 0; j < count; ++j) yp[(b + e) * rows + o0 + j] = sum8(acc[e][j]);
#else
        for (int e = 0; e < pair; ++e)
          for (int j = 0; j < count; ++j) {
            const uint16_t* mk = masks.data() + (e * kBlock + j) * stride;
            float acc = 0.f;
            for (int64_t i = 0; i < cols; ++i)
              if ((mk[i >> 4] >> (i & 15)) & 1) acc += xe[e][i] * wr[j][i];
            yp[(b + e) * rows + o0 + j] = acc;
          }
#endif
      }
    }
  });
  return y;
}

// grad_x[b, i] = sum_o g[b, o] w[o, i] m[b, o, i]; grad_w[o, i] = sum_b g[b, o] x[b, i] m[b, o, i]
// (unscaled). Entries of g that are zero (a ReLU's) draw no mask.
std::vector<at::Tensor> backward(at::Tensor g, at::Tensor x, at::Tensor w, int64_t key,
                                    int64_t threshold, bool need_x, bool need_w) {
  const int64_t batch = x.size(0), rows = w.size(0), cols = w.size(1);
  const int threads = at::get_num_threads();
  // One grad_x buffer per thread (threads share examples, not weight rows), summed at the end.
  auto partial = at::zeros({need_x ? threads : 0, batch, cols}, x.options());
  auto gw = at::empty({need_w ? rows : 0, cols}, x.options());
  const float* gp = g.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* pp = partial.data_ptr<float>();
  float* gwp = gw.data_ptr<float>();
  const Layout l = layout(rows, cols, threshold);
  const int64_t blocks = (rows + kBlock - 1) / kBlock;
  // The examples go in tiles whose inputs and grad_x rows stay in the core's L2 cache while every weight
  // row of the thread passes over them: untiled, each block of four rows streamed all of x and grad_x
  // from L3 (at batch 128 and 784 columns, a third of the backward's time on an AVX2 EPYC).
  const int64_t tiles = (batch * cols + kTileFloats - 1) / kTileFloats;
  const int64_t tile = std::max<int64_t>(1, (batch + tiles - 1) / tiles);
  at::parallel_for(0, blocks, 2, [&](int64_t begin, int64_t end) {
    std::vector<uint64_t> words(l.padded_words());
    std::vector<uint16_t> masks(tile * kBlock * l.row_masks());
    const int64_t stride = l.row_masks();
    std::vector<float> gs(tile * kBlock);
    float* gx = need_x ? pp + (int64_t)at::get_thread_num() * batch * cols : nullptr;
    for (int64_t b0 = 0; b0 < batch; b0 += tile) {
      const int64_t b1 = std::min(batch, b0 + tile);
      const bool first = b0 == 0;  // grad_w's rows are written by the first tile, added to by the others
      for (int64_t blk = begin; blk < end; ++blk) {
        const int64_t o0 = blk * kBlock;
        const int count = (int)std::min<int64_t>(kBlock, rows - o0);
        for (int64_t b = b0; b < b1; ++b) {
          bool skip[kBlock];
          float* gb = gs.data() + (b - b0) * kBlock;
          #pragma GCC unroll 8
          for (int j = 0; j < kBlock; ++j) {
            gb[j] = j < count ? gp[b * rows + o0 + j] : 0.f;
            skip[j] = gb[j] == 0.f;
          }
          block_masks(l, (uint64_t)key, b, o0, count, skip, words.data(), masks.data() + (b - b0) * kBlock * stride);
        }
#if defined(SB_AVX512) || defined(SB_AVX2)
        const float* wr[kBlock];
        const float* gr[kBlock];  // rows past `count` repeat the last: loaded, never stored
        #pragma GCC unroll 8
        for (int j = 0; j < kBlock; ++j) {
          wr[j] = wp + (o0 + std::min(j, count - 1)) * cols;
          gr[j] = need_w ? gwp + (o0 + std::min(j, count - 1)) * cols : nullptr;
        }
#endif
#ifdef SB_AVX512
        for (int64_t c = 0; c < l.chunks; ++c) {
          const __mmask16 tm = c == l.chunks - 1 ? l.tail : (__mmask16)0xFFFF;
          const __m512 w0 = _mm512_maskz_loadu_ps(tm, wr[0] + 16 * c), w1 = _mm512_maskz_loadu_ps(tm, wr[1] + 16 * c),
                       w2 = _mm512_maskz_loadu_ps(tm, wr[2] + 16 * c), w3 = _mm512_maskz_loadu_ps(tm, wr[3] + 16 * c);
          __m512 g0 = _mm512_setzero_ps(), g1 = g0, g2 = g0, g3 = g0;  // named: see forward
          if (need_w && !first) {
            g0 = _mm512_maskz_loadu_ps(tm, gr[0] + 16 * c), g1 = _mm512_maskz_loadu_ps(tm, gr[1] + 16 * c);
            g2 = _mm512_maskz_loadu_ps(tm, gr[2] + 16 * c), g3 = _mm512_maskz_loadu_ps(tm, gr[3] + 16 * c);
          }
          const float* xc = xp + 16 * c;
          float* gxc = need_x ? gx + 16 * c : nullptr;
          for (int64_t b = b0; b < b1; ++b) {
            const uint16_t* mk = masks.data() + (b - b0) * kBlock * stride + c;
            const __mmask16 k0 = mk[0], k1 = mk[stride], k2 = mk[2 * stride], k3 = mk[3 * stride];
            const float* gb = gs.data() + (b - b0) * kBlock;
            const __m512 s0 = _mm512_set1_ps(gb[0]), s1 = _mm512_set1_ps(gb[1]), s2 = _mm512_set1_ps(gb[2]),
                         s3 = _mm512_set1_ps(gb[3]);
            if (need_w) {
              const __m512 xv = _mm512_maskz_loadu_ps(tm, xc + b * cols);
              g0 = _mm512_mask3_fmadd_ps(s0, xv, g0, k0);
              g1 = _mm512_mask3_fmadd_ps(s1, xv, g1, k1);
              g2 = _mm512_mask3_fmadd_ps(s2, xv, g2, k2);
              g3 = _mm512_mask3_fmadd_ps(s3, xv, g3, k3);
            }
            if (need_x) {
              __m512 acc = _mm512_mask_mul_ps(_mm512_setzero_ps(), k0, s0, w0);
              __m512 acc2 = _mm512_mask_mul_ps(_mm512_setzero_ps(), k1, s1, w1);
              acc = _mm512_mask3_fmadd_ps(s2, w2, acc, k2);
              acc2 = _mm512_mask3_fmadd_ps(s3, w3, acc2, k3);
              acc = _mm512_add_ps(_mm512_add_ps(acc, acc2), _mm512_maskz_loadu_ps(tm, gxc + b * cols));
              _mm512_mask_storeu_ps(gxc + b * cols, tm, acc);
            }
          }
          if (need_w) {
            const __m512 gwv[kBlock] = {g0, g1, g2, g3};
            for (int j = 0; j < count; ++j) _mm512_mask_storeu_ps(gwp + (o0 + j) * cols + 16 * c, tm, gwv[j]);
          }
        }
#elif defined(SB_AVX2)
        // The walk over chunks and halves repeats the forward's on purpose: one template taking each loop's
        // body as an inlined lambda gave equal outputs and the same forward, but a backward 1.07-1.10x
        // slower (3 interleaved A/B runs of 9-11 rounds, one thread, the paper's two layers at batch 128).
        for (int64_t c = 0; c < l.chunks; ++c) {
          const unsigned tm = c == l.chunks - 1 ? l.tail : 0xFFFFu;
          for (int h = 0; h < 2; ++h) {
            const unsigned valid = (tm >> (8 * h)) & 0xFF;
            if (!valid) continue;
            const int64_t at = 16 * c + 8 * h;
            const int sh = 8 * h;
            const auto [w0, w1, w2, w3] = load_rows(wr, at, valid);
            __m256 g0 = _mm256_setzero_ps(), g1 = g0, g2 = g0, g3 = g0;
            if (need_w && !first) {
              g0 = load8(gr[0] + at, valid), g1 = load8(gr[1] + at, valid);
              g2 = load8(gr[2] + at, valid), g3 = load8(gr[3] + at, valid);
            }
            const float* xc = xp + at;
            float* gxc = need_x ? gx + at : nullptr;
            for (int64_t b = b0; b < b1; ++b) {
              const uint16_t* mk = masks.data() + (b - b0) * kBlock * stride + c;
              const float* gb = gs.data() + (b - b0) * kBlock;
              // Each row's gradient, kept only in the lanes its mask keeps.
              const __m256 s0 = _mm256_and_ps(_mm256_set1_ps(gb[0]), lanes(mk[0] >> sh)),
                           s1 = _mm256_and_ps(_mm256_set1_ps(gb[1]), lanes(mk[stride] >> sh)),
                           s2 = _mm256_and_ps(_mm256_set1_ps(gb[2]), lanes(mk[2 * stride] >> sh)),
                           s3 = _mm256_and_ps(_mm256_set1_ps(gb[3]), lanes(mk[3 * stride] >> sh));
              if (need_w) {
                const __m256 xv = load8(xc + b * cols, valid);
                g0 = _mm256_fmadd_ps(s0, xv, g0);
                g1 = _mm256_fmadd_ps(s1, xv, g1);
                g2 = _mm256_fmadd_ps(s2, xv, g2);
                g3 = _mm256_fmadd_ps(s3, xv, g3);
              }
              if (need_x) {
                __m256 acc = _mm256_mul_ps(s0, w0);
                __m256 acc2 = _mm256_mul_ps(s1, w1);
                acc = _mm256_fmadd_ps(s2, w2, acc);
                acc2 = _mm256_fmadd_ps(s3, w3, acc2);
                acc = _mm256_add_ps(_mm256_add_ps(acc, acc2), load8(gxc + b * cols, valid));
                store8(gxc + b * cols, acc, valid);
              }
            }
            if (need_w) {
              const __m256 gwv[kBlock] = {g0, g1, g2, g3};
              for (int j = 0; j < count; ++j) store8(gwp + (o0 + j) * cols + at, gwv[j], valid);
            }
          }
        }
#else
        for (int j = 0; j < count; ++j) {
          const float* wo = wp + (o0 + j) * cols;
          float* gwo = need_w ? gwp + (o0 + j) * cols : nullptr;
          if (need_w && first) std::fill(gwo, gwo + cols, 0.f);
          for (int64_t b = b0; b < b1; ++b) {
            const float gb = gs[(b - b0) * kBlock + j];
            const uint16_t* mk = masks.data() + ((b - b0) * kBlock + j) * stride;
            for (int64_t i = 0; i < cols; ++i) {
              if (!((mk[i >> 4] >> (i & 15)) & 1)) continue;
              if (need_w) gwo[i] += gb * xp[b * cols + i];
              if (need_x) gx[b * cols + i] += gb * wo[i];
            }
          }
        }
#endif
      }
    }
  });
  at::Tensor gx = need_x ? partial.sum(0) : at::Tensor();
  return {gx, gw};
}

// The 64-bit words of rows [b0, b1) x rows, as the kernels draw them (for the tests and the torch path).
at::Tensor words(int64_t key, int64_t b0, int64_t b1, int64_t rows, int64_t cols, int64_t threshold) {
  const Layout l = layout(rows, cols, threshold);
  auto out = at::empty({b1 - b0, rows, l.wpr}, at::TensorOptions().dtype(at::kLong));
  uint64_t* p = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  for (int64_t b = b0; b < b1; ++b)
    for (int64_t o = 0; o < rows; ++o)
      fill_words((uint64_t)key, (uint64_t)((b * rows + o) * l.wpr), l.wpr, p + ((b - b0) * rows + o) * l.wpr);
  return out;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("forward", &forward);
  m.def("backward", &backward);
  m.def("words", &words);
#if defined(SB_AVX512)
  m.attr("vector_path") = "avx512";
#elif defined(SB_AVX2)
  m.attr("vector_path") = "avx2";
#else
  m.attr("vector_path") = "scalar";
#endif
}
