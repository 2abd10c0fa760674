// Per-thread, 64-byte aligned scratch space, reused across tiles so that no
// call allocates in the steady state. thread_local keeps worker threads apart.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <new>

namespace neurocorr {

class Scratch {
 public:
  ~Scratch() { std::free(ptr_); }
  template <typename T>
  T* Get(size_t count) {
    size_t bytes = (count * sizeof(T) + 63) & ~size_t(63);
    if (bytes > size_) {
      std::free(ptr_);
      ptr_ = std::aligned_alloc(64, bytes);
      if (ptr_ == nullptr) throw std::bad_alloc();
      size_ = bytes;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// Rows [0, n) of src (n x m, row-major) into panels of R rows, k-major:
// dst[p][k][r] = src[(p*R + r)*m + k], zero-padded past n.
template <int R>
inline void PackPanels(const float* src, int n, int m, float* dst) {
  int panels = (n + R - 1) / R;
  for (int p = 0; p < panels; p++) {
    float* d = dst + static_cast<size_t>(p) * R * m;
    for (int r = 0; r < R; r++) {
      int row = p * R + r;
      if (row < n) {
        const float* s = src + static_cast<size_t>(row) * m;
        for (int k = 0; k < m; k++) d[static_cast<size_t>(k) * R + r] = s[k];
      } else {
        for (int k = 0; k < m; k++) d[static_cast<size_t>(k) * R + r] = 0.0f;
      }
    }
  }
}

}  // namespace neurocorr
