// N-API binding. Stateless apart from per-thread scratch, so it is safe to
// load and call from every worker thread at once.
#include <napi.h>
#include <unistd.h>

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

// computeTile(f, g, fCount, gCount, m, fStart, gStart, gChunk, isa, out[, fKey]) -> isa used
// fKey (optional, default 0): see RunTile in driver.h.
// out: ArrayBuffer laid out as rowBest f64[fCount], colBest f64[gCount],
//      rowArg u32[fCount], colArg u32[gCount] (global indices).
Napi::Value ComputeTile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10 || info.Length() > 11 || !info[0].IsTypedArray() || !info[1].IsTypedArray() || !info[9].IsArrayBuffer()) {
    Napi::TypeError::New(env, "computeTile(f, g, fCount, gCount, m, fStart, gStart, gChunk, isa, out[, fKey])").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Float32Array f = info[0].As<Napi::Float32Array>();
  Napi::Float32Array g = info[1].As<Napi::Float32Array>();
  const int nf = info[2].As<Napi::Number>().Int32Value();
  const int ng = info[3].As<Napi::Number>().Int32Value();
  const int m = info[4].As<Napi::Number>().Int32Value();
  const uint32_t fStart = info[5].As<Napi::Number>().Uint32Value();
  const uint32_t gStart = info[6].As<Napi::Number>().Uint32Value();
  const int gChunk = info[7].As<Napi::Number>().Int32Value();
  const std::string requested = info[8].As<Napi::String>().Utf8Value();
  Napi::ArrayBuffer out = info[9].As<Napi::ArrayBuffer>();
  const uint64_t fKey = info.Length() > 10 ? static_cast<uint64_t>(info[10].As<Napi::Number>().Int64Value()) : 0;

  if (f.TypedArrayType() != napi_float32_array || g.TypedArrayType() != napi_float32_array) {
    Napi::TypeError::New(env, "f and g must be Float32Arrays").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (nf <= 0 || ng <= 0 || m <= 0 || f.ElementLength() < static_cast<size_t>(nf) * m || g.ElementLength() < static_cast<size_t>(ng) * m ||
      out.ByteLength() < static_cast<size_t>(nf + ng) * 12) {
    Napi::RangeError::New(env, "computeTile: sizes do not match the buffers").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Isa isa = BestIsa();
  if (requested == "scalar") isa = Isa::Scalar;
  else if (requested == "avx2") isa = Isa::Avx2;
  else if (requested == "avx512") isa = Isa::Avx512;
  else if (requested != "auto") {
    Napi::RangeError::New(env, "isa must be auto, avx512, avx2 or scalar").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!neurocorr::CpuHas(isa)) {
    Napi::Error::New(env, std::string("this CPU does not support ") + IsaName(isa)).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  std::vector<float> rowBest(nf), colBest(ng);
  std::vector<uint32_t> rowArg(nf), colArg(ng);
  neurocorr::TileOut tile{rowBest.data(), rowArg.data(), colBest.data(), colArg.data()};
  try {
    switch (isa) {
      case Isa::Avx512:
        neurocorr::TileAvx512(f.Data(), g.Data(), nf, ng, m, gChunk, fKey, tile);
        break;
      case Isa::Avx2:
        neurocorr::TileAvx2(f.Data(), g.Data(), nf, ng, m, gChunk, fKey, tile);
        break;
      case Isa::Scalar:
        neurocorr::TileScalar(f.Data(), g.Data(), nf, ng, m, tile);
        break;
    }
  } catch (const std::bad_alloc&) {
    Napi::Error::New(env, "computeTile: out of memory for packing buffers").ThrowAsJavaScriptException();
    return env.Undefined();
  }

  auto* base = static_cast<uint8_t*>(out.Data());
  auto* rowBestOut = reinterpret_cast<double*>(base);
  auto* colBestOut = rowBestOut + nf;
  auto* rowArgOut = reinterpret_cast<uint32_t*>(colBestOut + ng);
  auto* colArgOut = rowArgOut + nf;
  for (int i = 0; i < nf; i++) {
    rowBestOut[i] = rowBest[i];
    rowArgOut[i] = gStart + rowArg[i];
  }
  for (int j = 0; j < ng; j++) {
    colBestOut[j] = colBest[j];
    colArgOut[j] = fStart + colArg[j];
  }
  return Napi::String::New(env, IsaName(isa));
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
  exports.Set("computeTile", Napi::Function::New(env, ComputeTile));
  return exports;
}

}  // namespace

NODE_API_MODULE(neurocorr, Init)
