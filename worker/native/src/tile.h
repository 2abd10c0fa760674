// Fused tile kernel: for an F block (nf x m) and a G block (ng x m), both
// neuron-major float32, find for every row and every column the largest
// |dot product| and its index, without ever storing the nf x ng products.
//
// Every variant computes each dot product as acc = fma(f[k], g[k], acc) for
// k = 0..m-1 starting from acc = 0, so all variants, tile sizes and block
// positions give bit-identical float32 values. Ties go to the smallest index.
#pragma once
#include <cstdint>

namespace neurocorr {

struct TileOut {
  float* rowBest;     // nf
  uint32_t* rowArg;   // nf, local column index
  float* colBest;     // ng
  uint32_t* colArg;   // ng, local row index
};

enum class Isa { Scalar = 0, Avx2 = 1, Avx512 = 2 };

void TileScalar(const float* f, const float* g, int nf, int ng, int m, TileOut out);
void TileAvx2(const float* f, const float* g, int nf, int ng, int m, int gchunk, uint64_t fKey, TileOut out);
void TileAvx512(const float* f, const float* g, int nf, int ng, int m, int gchunk, uint64_t fKey, TileOut out);

bool CpuHas(Isa isa);

}  // namespace neurocorr
