#include <cmath>

#include "tile.h"

namespace neurocorr {

void TileScalar(const float* f, const float* g, int nf, int ng, int m, TileOut out) {
  for (int j = 0; j < ng; j++) {
    out.colBest[j] = -1.0f;
    out.colArg[j] = 0;
  }
  for (int i = 0; i < nf; i++) {
    const float* a = f + static_cast<size_t>(i) * m;
    float best = -1.0f;
    uint32_t arg = 0;
    for (int j = 0; j < ng; j++) {
      const float* b = g + static_cast<size_t>(j) * m;
      float acc = 0.0f;
      for (int k = 0; k < m; k++) acc = std::fma(a[k], b[k], acc);
      float r = std::fabs(acc);
      if (r > best) {
        best = r;
        arg = static_cast<uint32_t>(j);
      }
      if (r > out.colBest[j]) {
        out.colBest[j] = r;
        out.colArg[j] = static_cast<uint32_t>(i);
      }
    }
    out.rowBest[i] = best;
    out.rowArg[i] = arg;
  }
}

}  // namespace neurocorr
