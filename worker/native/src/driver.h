// The blocking around a micro-kernel, shared by the SIMD variants.
//
// F rows are packed once into panels of K::MR rows. G columns are processed
// in chunks of `gchunk` (sized so a packed chunk stays in L2), each packed
// into panels of K::NR. For each F panel, the micro-kernel sweeps the chunk's
// G panels; row maxima are kept per SIMD lane and folded once per sweep.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "scratch.h"
#include "tile.h"

namespace neurocorr {

// Per-lane (value, column) pairs of one row -> the max, smallest column on ties.
inline void FoldLanes(const float* v, const uint32_t* idx, int lanes, float* best, uint32_t* arg) {
  float b = -1.0f;
  uint32_t a = 0;
  for (int l = 0; l < lanes; l++) {
    if (v[l] > b || (v[l] == b && idx[l] < a)) {
      b = v[l];
      a = idx[l];
    }
  }
  *best = b;
  *arg = a;
}

// fKey: a nonzero key promises that a later call with the same key, nf and m
// has the same F block, so its packed panels can be reused (consecutive
// tiles of one F block, in F-major order). 0 disables reuse.
template <typename K>
void RunTile(const float* f, const float* g, int nf, int ng, int m, int gchunk, uint64_t fKey, TileOut out) {
  constexpr int MR = K::MR, NR = K::NR, L = K::L;
  thread_local Scratch fScratch, gScratch, colScratch, rowScratch;
  thread_local uint64_t packedKey = 0;
  thread_local int packedNf = 0, packedM = 0;
  gchunk = std::max(NR, gchunk / NR * NR);
  const int fPanels = (nf + MR - 1) / MR;
  const bool reuse = fKey != 0 && fKey == packedKey && nf == packedNf && m == packedM;
  float* fp = fScratch.Get<float>(static_cast<size_t>(fPanels) * MR * m);
  if (!reuse) {
    packedKey = 0;  // a throw while packing must not leave a stale key behind
    PackPanels<MR>(f, nf, m, fp);
    packedKey = fKey;
    packedNf = nf;
    packedM = m;
  }
  std::fill(out.rowBest, out.rowBest + nf, -1.0f);
  std::fill(out.rowArg, out.rowArg + nf, 0u);
  float* rowv = rowScratch.Get<float>(2 * MR * L);
  uint32_t* rowi = reinterpret_cast<uint32_t*>(rowv + MR * L);

  for (int j0 = 0; j0 < ng; j0 += gchunk) {
    const int gc = std::min(gchunk, ng - j0);
    const int gPanels = (gc + NR - 1) / NR;
    const size_t padded = static_cast<size_t>(gPanels) * NR;
    float* gp = gScratch.Get<float>(padded * m);
    PackPanels<NR>(g + static_cast<size_t>(j0) * m, gc, m, gp);
    float* colv = colScratch.Get<float>(2 * padded);
    uint32_t* coli = reinterpret_cast<uint32_t*>(colv + padded);
    std::fill(colv, colv + padded, -1.0f);
    std::fill(coli, coli + padded, 0u);

    for (int p = 0; p < fPanels; p++) {
      std::fill(rowv, rowv + MR * L, -1.0f);
      std::fill(rowi, rowi + MR * L, 0u);
      const float* a = fp + static_cast<size_t>(p) * MR * m;
      for (int q = 0; q < gPanels; q++) {
        K::Micro(a, gp + static_cast<size_t>(q) * NR * m, m, static_cast<uint32_t>(p * MR), static_cast<uint32_t>(j0 + q * NR), rowv, rowi,
                 colv + q * NR, coli + q * NR);
      }
      // Chunks run in ascending columns, so '>' keeps the earlier chunk on ties.
      for (int r = 0; r < MR && p * MR + r < nf; r++) {
        float best;
        uint32_t arg;
        FoldLanes(rowv + r * L, rowi + r * L, L, &best, &arg);
        const int i = p * MR + r;
        if (best > out.rowBest[i]) {
          out.rowBest[i] = best;
          out.rowArg[i] = arg;
        }
      }
    }
    std::copy(colv, colv + gc, out.colBest + j0);
    std::copy(coli, coli + gc, out.colArg + j0);
  }
}

}  // namespace neurocorr
