// N-API binding. Stateless apart from per-thread scratch, so it is safe to
// load and call from every worker thread at once.
#include <napi.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "scratch.h"
#include "standardize.h"
#include "tile.h"

namespace {

using neurocorr::Isa;

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::Avx512:
      return "avx512";
    case Isa::Avx2:
      return "avx2";
    case Isa::Scalar:
      return "scalar";
  }
  return "unknown";
}

Isa BestIsa() {
  if (neurocorr::CpuHas(Isa::Avx512)) return Isa::Avx512;
  if (neurocorr::CpuHas(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  Napi::Array isas = Napi::Array::New(env);
  uint32_t n = 0;
  for (Isa isa : {Isa::Avx512, Isa::Avx2, Isa::Scalar}) {
    if (neurocorr::CpuHas(isa)) isas.Set(n++, IsaName(isa));
  }
  out.Set("isas", isas);
  out.Set("best", IsaName(BestIsa()));
  // glibc answers these from CPUID, which works where sysfs hides caches (VMs).
  out.Set("l1d", static_cast<double>(sysconf(_SC_LEVEL1_DCACHE_SIZE)));
  out.Set("l2", static_cast<double>(sysconf(_SC_LEVEL2_CACHE_SIZE)));
  out.Set("l3", static_cast<double>(sysconf(_SC_LEVEL3_CACHE_SIZE)));
  return out;
}

// The ISA and G chunk a thread's tile kernel was created with.
struct TileConfig {
  Isa isa;
  int gChunk;
};

bool ThrowFalse(const Napi::Error& error) {
  error.ThrowAsJavaScriptException();
  return false;
}

std::string Describe(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", v);
  return text;
}

// input[name] as an integer in [lo, hi]; a missing optional field gives `fallback`.
bool ReadInteger(const Napi::Object& input, const char* name, double lo, double hi, double* out, const double* fallback = nullptr) {
  Napi::Env env = input.Env();
  const Napi::Value v = input.Get(name);
  if (env.IsExceptionPending()) return false;
  if (fallback != nullptr && v.IsUndefined()) {
    *out = *fallback;
    return true;
  }
  if (!v.IsNumber()) return ThrowFalse(Napi::TypeError::New(env, std::string("computeTile: input.") + name + " must be a number"));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= lo && d <= hi) || std::floor(d) != d) {
    return ThrowFalse(Napi::RangeError::New(
        env, std::string("computeTile: input.") + name + " must be an integer from " + Describe(lo) + " to " + Describe(hi) + ", got " + Describe(d)));
  }
  *out = d;
  return true;
}

bool ReadRows(const Napi::Object& input, const char* name, Napi::Float32Array* out) {
  Napi::Env env = input.Env();
  const Napi::Value v = input.Get(name);
  if (env.IsExceptionPending()) return false;
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    return ThrowFalse(Napi::TypeError::New(env, std::string("computeTile: input.") + name + " must be a Float32Array"));
  }
  *out = v.As<Napi::Float32Array>();
  return true;
}

// computeTile({ f, g, fCount, gCount, m, fStart, gStart, fKey? }, out), bound to one TileConfig.
// fKey (optional, default 0): see RunTile in driver.h.
// out: ArrayBuffer laid out as rowBest f64[fCount], colBest f64[gCount],
//      rowArg u32[fCount], colArg u32[gCount] (global indices).
Napi::Value ComputeTile(const Napi::CallbackInfo& info, TileConfig config) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "computeTile({ f, g, fCount, gCount, m, fStart, gStart, fKey? }, out)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!info[1].IsArrayBuffer()) {
    Napi::TypeError::New(env, "computeTile: out must be an ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const Napi::Object input = info[0].As<Napi::Object>();
  Napi::Float32Array f, g;
  double nf = 0, ng = 0, m = 0, fStart = 0, gStart = 0, fKey = 0;
  const double noKey = 0;
  constexpr double kMaxInt = 2147483647.0, kMaxIndex = 4294967295.0, kMaxKey = 9007199254740991.0;
  if (!ReadRows(input, "f", &f) || !ReadRows(input, "g", &g) || !ReadInteger(input, "fCount", 1, kMaxInt, &nf) ||
      !ReadInteger(input, "gCount", 1, kMaxInt, &ng) || !ReadInteger(input, "m", 1, kMaxInt, &m) || !ReadInteger(input, "fStart", 0, kMaxIndex, &fStart) ||
      !ReadInteger(input, "gStart", 0, kMaxIndex, &gStart) || !ReadInteger(input, "fKey", 0, kMaxKey, &fKey, &noKey)) {
    return env.Undefined();
  }
  Napi::ArrayBuffer out = info[1].As<Napi::ArrayBuffer>();
  const size_t fNeed = static_cast<size_t>(nf) * static_cast<size_t>(m), gNeed = static_cast<size_t>(ng) * static_cast<size_t>(m);
  const size_t outNeed = static_cast<size_t>(nf + ng) * 12;
  std::string problem;
  if (f.ElementLength() < fNeed) problem = "input.f holds " + std::to_string(f.ElementLength()) + " floats, fewer than fCount x m = " + std::to_string(fNeed);
  else if (g.ElementLength() < gNeed) problem = "input.g holds " + std::to_string(g.ElementLength()) + " floats, fewer than gCount x m = " + std::to_string(gNeed);
  else if (out.ByteLength() < outNeed) problem = "out holds " + std::to_string(out.ByteLength()) + " bytes, fewer than (fCount + gCount) x 12 = " + std::to_string(outNeed);
  else if (fStart + nf - 1 > kMaxIndex || gStart + ng - 1 > kMaxIndex) problem = "global indices past 2^32 - 1";
  if (!problem.empty()) {
    Napi::RangeError::New(env, "computeTile: " + problem).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int nfi = static_cast<int>(nf), ngi = static_cast<int>(ng), mi = static_cast<int>(m);
  const uint64_t key = static_cast<uint64_t>(fKey);

  std::vector<float> rowBest(nfi), colBest(ngi);
  std::vector<uint32_t> rowArg(nfi), colArg(ngi);
  neurocorr::TileOut tile{rowBest.data(), rowArg.data(), colBest.data(), colArg.data()};
  try {
    switch (config.isa) {
      case Isa::Avx512:
        neurocorr::TileAvx512(f.Data(), g.Data(), nfi, ngi, mi, config.gChunk, key, tile);
        break;
      case Isa::Avx2:
        neurocorr::TileAvx2(f.Data(), g.Data(), nfi, ngi, mi, config.gChunk, key, tile);
        break;
      case Isa::Scalar:
        neurocorr::TileScalar(f.Data(), g.Data(), nfi, ngi, mi, tile);
        break;
    }
  } catch (const std::bad_alloc&) {
    Napi::Error::New(env, "computeTile: out of memory for packing buffers").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  auto* base = static_cast<uint8_t*>(out.Data());
  auto* rowBestOut = reinterpret_cast<double*>(base);
  auto* colBestOut = rowBestOut + nfi;
  auto* rowArgOut = reinterpret_cast<uint32_t*>(colBestOut + ngi);
  auto* colArgOut = rowArgOut + nfi;
  const auto f0 = static_cast<uint32_t>(fStart), g0 = static_cast<uint32_t>(gStart);
  for (int i = 0; i < nfi; i++) {
    rowBestOut[i] = rowBest[i];
    rowArgOut[i] = g0 + rowArg[i];
  }
  for (int j = 0; j < ngi; j++) {
    colBestOut[j] = colBest[j];
    colArgOut[j] = f0 + colArg[j];
  }
  return env.Undefined();
}

// tileKernel({ isa, gChunk }) -> computeTile bound to that ISA and G chunk (columns per
// packed chunk), with `isa` (what 'auto' resolved to) and `gChunk` as properties.
// The ISA is resolved and checked here, once, rather than on every tile.
Napi::Value TileKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) {
    Napi::TypeError::New(env, "tileKernel({ isa, gChunk })").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const Napi::Object options = info[0].As<Napi::Object>();
  const Napi::Value isaValue = options.Get("isa");
  const Napi::Value chunkValue = options.Get("gChunk");
  if (env.IsExceptionPending()) return env.Undefined();
  if (!isaValue.IsString()) {
    Napi::TypeError::New(env, "tileKernel: isa must be a string: auto, avx512, avx2 or scalar").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const std::string requested = isaValue.As<Napi::String>().Utf8Value();
  Isa isa = BestIsa();
  if (requested == "scalar") isa = Isa::Scalar;
  else if (requested == "avx2") isa = Isa::Avx2;
  else if (requested == "avx512") isa = Isa::Avx512;
  else if (requested != "auto") {
    Napi::RangeError::New(env, "tileKernel: isa must be auto, avx512, avx2 or scalar, got '" + requested + "'").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!neurocorr::CpuHas(isa)) {
    std::string supported;
    for (Isa other : {Isa::Avx512, Isa::Avx2, Isa::Scalar}) {
      if (neurocorr::CpuHas(other)) supported += std::string(supported.empty() ? "" : ", ") + IsaName(other);
    }
    Napi::Error::New(env, std::string("tileKernel: this CPU does not support ") + IsaName(isa) + " (it supports " + supported + ")").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!chunkValue.IsNumber()) {
    Napi::TypeError::New(env, "tileKernel: gChunk must be a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const double chunk = chunkValue.As<Napi::Number>().DoubleValue();
  if (!(chunk >= 1 && chunk <= 2147483647.0) || std::floor(chunk) != chunk) {
    Napi::RangeError::New(env, "tileKernel: gChunk must be a positive integer, got " + Describe(chunk)).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const TileConfig config{isa, static_cast<int>(chunk)};
  Napi::Function bound = Napi::Function::New(env, [config](const Napi::CallbackInfo& call) { return ComputeTile(call, config); }, "computeTile");
  bound.Set("isa", IsaName(isa));
  bound.Set("gChunk", config.gChunk);
  return bound;
}

// adviseHugePages(view) -> whether the kernel accepted the advice. For large
// buffers (SharedArrayBuffers of z) that are about to be filled.
Napi::Value AdviseHugePagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray()) {
    Napi::TypeError::New(env, "adviseHugePages(typedArray)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  // The raw call: it hands back the data pointer of SharedArrayBuffer views too.
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, info[0], &type, &length, &data, nullptr, nullptr) != napi_ok) {
    Napi::Error::New(env, "adviseHugePages: cannot read the typed array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t bytes = info[0].As<Napi::TypedArray>().ByteLength();
  return Napi::Boolean::New(env, neurocorr::AdviseHugePages(data, bytes));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePagesJs));
  exports.Set("standardizeAccumulate", Napi::Function::New(env, neurocorr::StandardizeAccumulate));
  exports.Set("standardizeWrite", Napi::Function::New(env, neurocorr::StandardizeWrite));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("tileKernel", Napi::Function::New(env, TileKernel));
  return exports;
}

}  // namespace

NODE_API_MODULE(neurocorr, Init)
