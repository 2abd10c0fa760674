// AVX-512 variant: a 12 x 32 register tile (24 zmm accumulators). After the
// k loop the |products| are folded, still in registers, into column maxima
// over the 12 rows and into per-lane row maxima; the tile never reaches memory.
#include <immintrin.h>

#include "driver.h"
#include "tile.h"

#define NC_AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))

namespace neurocorr {
namespace {

struct Avx512Kernel {
  static constexpr int MR = 12;
  static constexpr int NR = 32;
  static constexpr int L = 16;

// One 12 x 32 micro-tile. rowv/rowi hold, per row and lane, the best value
// and column so far; colv/coli the best value and row for the 32 columns.
  NC_AVX512 static void Micro(const float* a, const float* b, int m, uint32_t i0, uint32_t j0, float* rowv, uint32_t* rowi, float* colv,
                            uint32_t* coli) {
  __m512 c[MR][2];
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) c[r][0] = c[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int k = 0; k < m; k++) {
    const __m512 b0 = _mm512_load_ps(b + k * NR);
    const __m512 b1 = _mm512_load_ps(b + k * NR + L);
    const float* ak = a + k * MR;
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512 ar = _mm512_set1_ps(ak[r]);
      c[r][0] = _mm512_fmadd_ps(ar, b0, c[r][0]);
      c[r][1] = _mm512_fmadd_ps(ar, b1, c[r][1]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) {
    c[r][0] = _mm512_abs_ps(c[r][0]);
    c[r][1] = _mm512_abs_ps(c[r][1]);
  }
  // Columns: max over the 12 rows; ascending rows with '>' keep the smallest row.
#pragma GCC unroll 2
  for (int h = 0; h < 2; h++) {
    __m512 best = c[0][h];
    __m512i arg = _mm512_set1_epi32(static_cast<int>(i0));
#pragma GCC unroll 11
    for (int r = 1; r < MR; r++) {
      const __mmask16 gt = _mm512_cmp_ps_mask(c[r][h], best, _CMP_GT_OQ);
      best = _mm512_mask_mov_ps(best, gt, c[r][h]);
      arg = _mm512_mask_mov_epi32(arg, gt, _mm512_set1_epi32(static_cast<int>(i0 + r)));
    }
    const __m512 prev = _mm512_load_ps(colv + h * L);
    const __mmask16 gt = _mm512_cmp_ps_mask(best, prev, _CMP_GT_OQ);
    _mm512_store_ps(colv + h * L, _mm512_mask_mov_ps(prev, gt, best));
    const __m512i prevArg = _mm512_load_si512(coli + h * L);
    _mm512_store_si512(coli + h * L, _mm512_mask_mov_epi32(prevArg, gt, arg));
  }
  // Rows: per lane, columns j0+lane then j0+16+lane, then the running state.
  const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i ja = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(j0)), iota);
  const __m512i jb = _mm512_add_epi32(ja, _mm512_set1_epi32(L));
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) {
    const __mmask16 second = _mm512_cmp_ps_mask(c[r][1], c[r][0], _CMP_GT_OQ);
    const __m512 best = _mm512_mask_mov_ps(c[r][0], second, c[r][1]);
    const __m512i arg = _mm512_mask_mov_epi32(ja, second, jb);
    const __m512 prev = _mm512_load_ps(rowv + r * L);
    const __mmask16 gt = _mm512_cmp_ps_mask(best, prev, _CMP_GT_OQ);
    _mm512_store_ps(rowv + r * L, _mm512_mask_mov_ps(prev, gt, best));
    const __m512i prevArg = _mm512_load_si512(rowi + r * L);
    _mm512_store_si512(rowi + r * L, _mm512_mask_mov_epi32(prevArg, gt, arg));
  }
}

};

}  // namespace

void TileAvx512(const float* f, const float* g, int nf, int ng, int m, int gchunk, uint64_t fKey, TileOut out) {
  RunTile<Avx512Kernel>(f, g, nf, ng, m, gchunk, fKey, out);
}

}  // namespace neurocorr
