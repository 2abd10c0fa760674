#include "standardize.h"

#include <cmath>
#include <cstdint>

namespace neurocorr {
namespace {

constexpr int kWriteBlock = 16;

struct Layout {
  int pn, spatial;
  int64_t probeStride, spatialStride;
};

template <typename T>
void Accumulate(const T* data, Layout g, const double* cols, int count, const double* shift, double* s1, double* s2, double* maxAbs) {
  for (int p = 0; p < g.pn; p++) {
    for (int s = 0; s < g.spatial; s++) {
      const T* row = data + p * g.probeStride + s * g.spatialStride;
      for (int j = 0; j < count; j++) {
        const double v = static_cast<double>(row[static_cast<int64_t>(cols[j])]);
        const double d = v - shift[j];
        s1[j] += d;
        s2[j] += d * d;
        const double a = std::fabs(v);
        if (a > maxAbs[j]) maxAbs[j] = a;
      }
    }
  }
}

template <typename T>
void Write(const T* data, int p0, Layout g, const double* cols, int count, const double* mean, const double* scale, const uint8_t* constant,
           float* out, int64_t m) {
  for (int j0 = 0; j0 < count; j0 += kWriteBlock) {
    const int j1 = j0 + kWriteBlock < count ? j0 + kWriteBlock : count;
    for (int p = 0; p < g.pn; p++) {
      for (int s = 0; s < g.spatial; s++) {
        const int64_t t = static_cast<int64_t>(p0 + p) * g.spatial + s;
        const T* row = data + p * g.probeStride + s * g.spatialStride;
        for (int j = j0; j < j1; j++) {
          if (constant[j] == 0) out[j * m + t] = static_cast<float>((static_cast<double>(row[static_cast<int64_t>(cols[j])]) - mean[j]) * scale[j]);
        }
      }
    }
  }
}

// The raw call also serves views of SharedArrayBuffers.
template <typename A>
A* Ptr(const Napi::Value& v) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_get_typedarray_info(v.Env(), v, &type, &length, &data, nullptr, nullptr);
  return static_cast<A*>(data);
}

Layout LayoutOf(const Napi::CallbackInfo& info, int at) {
  return Layout{info[at].As<Napi::Number>().Int32Value(), info[at + 1].As<Napi::Number>().Int32Value(),
                info[at + 2].As<Napi::Number>().Int64Value(), info[at + 3].As<Napi::Number>().Int64Value()};
}

bool IsF64(const Napi::Value& v) { return v.As<Napi::TypedArray>().TypedArrayType() == napi_float64_array; }

}  // namespace

// accumulate(data, pn, spatial, probeStride, spatialStride, cols, shift, s1, s2, maxAbs)
Napi::Value StandardizeAccumulate(const Napi::CallbackInfo& info) {
  const Layout g = LayoutOf(info, 1);
  const int count = static_cast<int>(info[5].As<Napi::TypedArray>().ElementLength());
  const double* cols = Ptr<const double>(info[5]);
  if (IsF64(info[0])) {
    Accumulate(Ptr<const double>(info[0]), g, cols, count, Ptr<const double>(info[6]), Ptr<double>(info[7]), Ptr<double>(info[8]), Ptr<double>(info[9]));
  } else {
    Accumulate(Ptr<const float>(info[0]), g, cols, count, Ptr<const double>(info[6]), Ptr<double>(info[7]), Ptr<double>(info[8]), Ptr<double>(info[9]));
  }
  return info.Env().Undefined();
}

// write(data, p0, pn, spatial, probeStride, spatialStride, cols, mean, scale, constant, out, m)
Napi::Value StandardizeWrite(const Napi::CallbackInfo& info) {
  const int p0 = info[1].As<Napi::Number>().Int32Value();
  const Layout g = LayoutOf(info, 2);
  const int count = static_cast<int>(info[6].As<Napi::TypedArray>().ElementLength());
  const double* cols = Ptr<const double>(info[6]);
  const int64_t m = info[11].As<Napi::Number>().Int64Value();
  float* out = Ptr<float>(info[10]);
  if (IsF64(info[0])) {
    Write(Ptr<const double>(info[0]), p0, g, cols, count, Ptr<const double>(info[7]), Ptr<const double>(info[8]), Ptr<const uint8_t>(info[9]), out, m);
  } else {
    Write(Ptr<const float>(info[0]), p0, g, cols, count, Ptr<const double>(info[7]), Ptr<const double>(info[8]), Ptr<const uint8_t>(info[9]), out, m);
  }
  return info.Env().Undefined();
}

}  // namespace neurocorr
