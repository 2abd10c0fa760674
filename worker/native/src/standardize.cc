#include "standardize.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

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

// One typed array of the options object: its type checked, its elements and data read raw (views of
// SharedArrayBuffers included).
struct View {
  napi_typedarray_type type = napi_uint8_array;
  size_t length = 0;
  void* data = nullptr;
};

std::string Describe(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

// Reads and checks the fields of one call's options object; the first problem is thrown as a TypeError
// (a missing field or a wrong type) or a RangeError (a length or a value that does not fit), naming it.
class Reader {
 public:
  Reader(const Napi::CallbackInfo& info, const char* call) : env_(info.Env()), call_(call) {
    if (info.Length() != 1 || !info[0].IsObject() || info[0].IsTypedArray() || info[0].IsArray()) {
      Fail(Napi::TypeError::New(env_, std::string(call) + " takes one options object"));
      return;
    }
    options_ = info[0].As<Napi::Object>();
  }

  bool ok() const { return ok_; }

  // An integer field in [lo, hi].
  int64_t Integer(const char* name, double lo, double hi) {
    if (!ok_) return 0;
    const Napi::Value v = options_.Get(name);
    if (env_.IsExceptionPending()) {
      Stop();
      return 0;
    }
    if (!v.IsNumber()) {
      Type(name, "a number");
      return 0;
    }
    const double d = v.As<Napi::Number>().DoubleValue();
    if (!(d >= lo && d <= hi) || std::floor(d) != d) {
      Range(std::string(name) + " must be an integer from " + Describe(lo) + " to " + Describe(hi) + ", got " + Describe(d));
      return 0;
    }
    return static_cast<int64_t>(d);
  }

  // A typed array field of one of the types in `types` (a mask of 1 << napi_typedarray_type).
  View Array(const char* name, unsigned types, const char* expected) {
    View view;
    if (!ok_) return view;
    const Napi::Value v = options_.Get(name);
    if (env_.IsExceptionPending()) {
      Stop();
    } else if (!v.IsTypedArray() || napi_get_typedarray_info(env_, v, &view.type, &view.length, &view.data, nullptr, nullptr) != napi_ok ||
               (types & (1u << view.type)) == 0) {
      Type(name, expected);
    }
    return view;
  }

  // The neurons' column offsets: at most 2^31 - 1 of them (the loops count them in an int).
  View Columns(const char* name) {
    View view = Array(name, 1u << napi_float64_array, "a Float64Array");
    if (ok_ && view.length > 2147483647u) Range(std::string(name) + " holds more than 2^31 - 1 neurons");
    return view;
  }

  // A per-neuron array: as many elements as cols.
  View PerNeuron(const char* name, unsigned types, const char* expected, size_t count) {
    View view = Array(name, types, expected);
    if (ok_ && view.length != count) {
      Range(std::string(name) + " holds " + std::to_string(view.length) + " elements, one per neuron of cols (" + std::to_string(count) + ")");
    }
    return view;
  }

  // Every column index is an integer, and the last row of the chunk (`last` elements past its start) fits in data.
  void Fits(const View& cols, const View& data, int64_t last) {
    if (!ok_) return;
    const double* c = static_cast<const double*>(cols.data);
    for (size_t j = 0; j < cols.length; j++) {
      const double col = c[j];
      if (!(col >= 0) || std::floor(col) != col || col + static_cast<double>(last) >= static_cast<double>(data.length)) {
        Range("cols[" + std::to_string(j) + "] = " + Describe(col) + " reads past data (" + std::to_string(data.length) + " elements; the chunk's last row starts at " +
              std::to_string(last) + ")");
        return;
      }
    }
  }

  bool Range(const std::string& problem) { return Fail(Napi::RangeError::New(env_, std::string(call_) + ": options." + problem)); }

 private:
  bool Type(const char* name, const char* expected) {
    return Fail(Napi::TypeError::New(env_, std::string(call_) + ": options." + name + " must be " + expected));
  }
  bool Fail(const Napi::Error& error) {
    if (ok_) error.ThrowAsJavaScriptException();
    return Stop();
  }
  bool Stop() {
    ok_ = false;
    return false;
  }

  Napi::Env env_;
  const char* call_;
  Napi::Object options_;
  bool ok_ = true;
};

constexpr unsigned kChunkTypes = (1u << napi_float32_array) | (1u << napi_float64_array);
constexpr double kMaxIndex = 9007199254740991.0;  // 2^53 - 1: every index a double holds exactly

// The chunk's layout, checked; `last` is the offset of its last (probe, spatial) row.
Layout ReadLayout(Reader& r, int64_t* last) {
  Layout g{};
  g.pn = static_cast<int>(r.Integer("pn", 1, 2147483647));
  g.spatial = static_cast<int>(r.Integer("spatial", 1, 2147483647));
  g.probeStride = r.Integer("probeStride", 0, kMaxIndex);
  g.spatialStride = r.Integer("spatialStride", 0, kMaxIndex);
  if (r.ok()) {
    const double end = static_cast<double>(g.pn - 1) * static_cast<double>(g.probeStride) + static_cast<double>(g.spatial - 1) * static_cast<double>(g.spatialStride);
    if (end > kMaxIndex) r.Range("pn, spatial and the strides reach past 2^53 elements");
    *last = static_cast<int64_t>(end);
  }
  return g;
}

}  // namespace

// standardizeAccumulate({ data, pn, spatial, probeStride, spatialStride, cols, shift, s1, s2, maxAbs })
Napi::Value StandardizeAccumulate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Reader r(info, "standardizeAccumulate");
  const View data = r.Array("data", kChunkTypes, "a Float32Array or a Float64Array");
  int64_t last = 0;
  const Layout g = ReadLayout(r, &last);
  const View cols = r.Columns("cols");
  const size_t count = cols.length;
  const View shift = r.PerNeuron("shift", 1u << napi_float64_array, "a Float64Array", count);
  const View s1 = r.PerNeuron("s1", 1u << napi_float64_array, "a Float64Array", count);
  const View s2 = r.PerNeuron("s2", 1u << napi_float64_array, "a Float64Array", count);
  const View maxAbs = r.PerNeuron("maxAbs", 1u << napi_float64_array, "a Float64Array", count);
  r.Fits(cols, data, last);
  if (!r.ok()) return env.Undefined();
  const auto* c = static_cast<const double*>(cols.data);
  const auto* sh = static_cast<const double*>(shift.data);
  auto* a = static_cast<double*>(s1.data);
  auto* b = static_cast<double*>(s2.data);
  auto* x = static_cast<double*>(maxAbs.data);
  if (data.type == napi_float64_array) {
    Accumulate(static_cast<const double*>(data.data), g, c, static_cast<int>(count), sh, a, b, x);
  } else {
    Accumulate(static_cast<const float*>(data.data), g, c, static_cast<int>(count), sh, a, b, x);
  }
  return env.Undefined();
}

// standardizeWrite({ data, p0, pn, spatial, probeStride, spatialStride, cols, mean, scale, constant, out, m })
Napi::Value StandardizeWrite(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Reader r(info, "standardizeWrite");
  const View data = r.Array("data", kChunkTypes, "a Float32Array or a Float64Array");
  const int64_t p0 = r.Integer("p0", 0, 2147483647);
  int64_t last = 0;
  const Layout g = ReadLayout(r, &last);
  const View cols = r.Columns("cols");
  const size_t count = cols.length;
  const View mean = r.PerNeuron("mean", 1u << napi_float64_array, "a Float64Array", count);
  const View scale = r.PerNeuron("scale", 1u << napi_float64_array, "a Float64Array", count);
  const View constant = r.PerNeuron("constant", 1u << napi_uint8_array, "a Uint8Array", count);
  const View out = r.Array("out", 1u << napi_float32_array, "a Float32Array");
  const int64_t m = r.Integer("m", 1, kMaxIndex);
  r.Fits(cols, data, last);
  if (r.ok() && static_cast<double>(p0 + g.pn) * g.spatial > static_cast<double>(m)) {
    r.Range("p0 + pn = " + std::to_string(p0 + g.pn) + " probes of " + std::to_string(g.spatial) + " samples each reach past m = " + std::to_string(m));
  }
  if (r.ok() && static_cast<double>(count) * static_cast<double>(m) > static_cast<double>(out.length)) {
    r.Range("out holds " + std::to_string(out.length) + " elements, fewer than cols x m = " + std::to_string(count) + " x " + std::to_string(m));
  }
  if (!r.ok()) return env.Undefined();
  const auto* c = static_cast<const double*>(cols.data);
  const auto* mu = static_cast<const double*>(mean.data);
  const auto* sc = static_cast<const double*>(scale.data);
  const auto* k = static_cast<const uint8_t*>(constant.data);
  auto* o = static_cast<float*>(out.data);
  if (data.type == napi_float64_array) {
    Write(static_cast<const double*>(data.data), static_cast<int>(p0), g, c, static_cast<int>(count), mu, sc, k, o, m);
  } else {
    Write(static_cast<const float*>(data.data), static_cast<int>(p0), g, c, static_cast<int>(count), mu, sc, k, o, m);
  }
  return env.Undefined();
}

}  // namespace neurocorr
