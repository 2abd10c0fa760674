// The two inner loops of standardization, mirroring shared/standardize.ts
// operation for operation (float64, same order per neuron, no contraction),
// so z is bit-identical whichever implementation runs.
#pragma once
#include <napi.h>

namespace neurocorr {

Napi::Value StandardizeAccumulate(const Napi::CallbackInfo& info);
Napi::Value StandardizeWrite(const Napi::CallbackInfo& info);

}  // namespace neurocorr
