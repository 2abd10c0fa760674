// Per-thread, 64-byte aligned scratch space, reused across tiles so that no
// call allocates in the steady state. thread_local keeps worker threads apart.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace neurocorr {

constexpr size_t kHugePage = size_t(2) << 20;

// Asks for transparent huge pages over the 2 MiB-aligned part of a region
// before it is first touched: on VMs a 4 KiB page fault costs microseconds,
// so faulting in large buffers page by page is slower than filling them.
inline bool AdviseHugePages(void* ptr, size_t bytes) {
#ifdef MADV_HUGEPAGE
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(ptr) + kHugePage - 1) & ~(kHugePage - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(ptr) + bytes) & ~(kHugePage - 1);
  return end > begin && madvise(reinterpret_cast<void*>(begin), end - begin, MADV_HUGEPAGE) == 0;
#else
  (void)ptr;
  (void)bytes;
  return false;
#endif
}

class Scratch {
 public:
  ~Scratch() { std::free(ptr_); }
  template <typename T>
  T* Get(size_t count) {
    size_t bytes = (count * sizeof(T) + 63) & ~size_t(63);
    if (bytes > size_) {
      std::free(ptr_);
      const bool huge = bytes >= kHugePage;
      if (huge) bytes = (bytes + kHugePage - 1) & ~(kHugePage - 1);
      ptr_ = std::aligned_alloc(huge ? kHugePage : 64, bytes);
      if (ptr_ == nullptr) throw std::bad_alloc();
      if (huge) AdviseHugePages(ptr_, bytes);
      size_ = bytes;
    }
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  size_t size_ = 0;
};

// Rows [0, n) of src (n x m, row-major) into panels of R rows, k-major:
// dst[p][k][r] = src[(p*R + r)*m + k], zero-padded past n. The copy runs in
// blocks of 16 k so the R x 16 destination block stays in L1 while rows stream.
template <int R>
inline void PackPanels(const float* src, int n, int m, float* dst) {
  constexpr int KB = 16;
  const int panels = (n + R - 1) / R;
  for (int p = 0; p < panels; p++) {
    float* d = dst + static_cast<size_t>(p) * R * m;
    const int rows = n - p * R < R ? n - p * R : R;
    for (int k0 = 0; k0 < m; k0 += KB) {
      const int k1 = k0 + KB < m ? k0 + KB : m;
      for (int r = 0; r < rows; r++) {
        const float* s = src + static_cast<size_t>(p * R + r) * m;
        for (int k = k0; k < k1; k++) d[static_cast<size_t>(k) * R + r] = s[k];
      }
      for (int r = rows; r < R; r++) {
        for (int k = k0; k < k1; k++) d[static_cast<size_t>(k) * R + r] = 0.0f;
      }
    }
  }
}

}  // namespace neurocorr
