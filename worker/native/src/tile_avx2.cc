// AVX2 variant: a 6 x 16 register tile (12 ymm accumulators), with the same
// in-register folding as the AVX-512 variant.
#include <immintrin.h>

#include "driver.h"
#include "tile.h"

#define NC_AVX2 __attribute__((target("avx2,fma")))

namespace neurocorr {
namespace {

struct Avx2Kernel {
  static constexpr int MR = 6;
  static constexpr int NR = 16;
  static constexpr int L = 8;

  NC_AVX2 static __m256i Select(__m256i a, __m256 mask, __m256i b) { return _mm256_blendv_epi8(a, b, _mm256_castps_si256(mask)); }

  NC_AVX2 static void Micro(const float* a, const float* b, int m, uint32_t i0, uint32_t j0, float* rowv, uint32_t* rowi, float* colv,
                          uint32_t* coli) {
  __m256 c[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int k = 0; k < m; k++) {
    const __m256 b0 = _mm256_load_ps(b + k * NR);
    const __m256 b1 = _mm256_load_ps(b + k * NR + L);
    const float* ak = a + k * MR;
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      const __m256 ar = _mm256_broadcast_ss(ak + r);
      c[r][0] = _mm256_fmadd_ps(ar, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(ar, b1, c[r][1]);
    }
  }
  const __m256 sign = _mm256_set1_ps(-0.0f);
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    c[r][0] = _mm256_andnot_ps(sign, c[r][0]);
    c[r][1] = _mm256_andnot_ps(sign, c[r][1]);
  }
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    __m256 best = c[0][h];
    __m256i arg = _mm256_set1_epi32(static_cast<int>(i0));
#pragma GCC unroll 5
    for (int r = 1; r < MR; r++) {
      const __m256 gt = _mm256_cmp_ps(c[r][h], best, _CMP_GT_OQ);
      best = _mm256_blendv_ps(best, c[r][h], gt);
      arg = Select(arg, gt, _mm256_set1_epi32(static_cast<int>(i0 + r)));
    }
    const __m256 prev = _mm256_load_ps(colv + h * L);
    const __m256 gt = _mm256_cmp_ps(best, prev, _CMP_GT_OQ);
    _mm256_store_ps(colv + h * L, _mm256_blendv_ps(prev, best, gt));
    const __m256i prevArg = _mm256_load_si256(reinterpret_cast<const __m256i*>(coli + h * L));
    _mm256_store_si256(reinterpret_cast<__m256i*>(coli + h * L), Select(prevArg, gt, arg));
  }
  const __m256i iota = _mm256_set_epi32(7, 6, 5, 4, 3, 2, 1, 0);
  const __m256i ja = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(j0)), iota);
  const __m256i jb = _mm256_add_epi32(ja, _mm256_set1_epi32(L));
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    const __m256 second = _mm256_cmp_ps(c[r][1], c[r][0], _CMP_GT_OQ);
    const __m256 best = _mm256_blendv_ps(c[r][0], c[r][1], second);
    const __m256i arg = Select(ja, second, jb);
    const __m256 prev = _mm256_load_ps(rowv + r * L);
    const __m256 gt = _mm256_cmp_ps(best, prev, _CMP_GT_OQ);
    _mm256_store_ps(rowv + r * L, _mm256_blendv_ps(prev, best, gt));
    const __m256i prevArg = _mm256_load_si256(reinterpret_cast<const __m256i*>(rowi + r * L));
    _mm256_store_si256(reinterpret_cast<__m256i*>(rowi + r * L), Select(prevArg, gt, arg));
  }
}

};

}  // namespace

void TileAvx2(const float* f, const float* g, int nf, int ng, int m, int gchunk, uint64_t fKey, TileOut out) {
  RunTile<Avx2Kernel>(f, g, nf, ng, m, gchunk, fKey, out);
}

}  // namespace neurocorr
