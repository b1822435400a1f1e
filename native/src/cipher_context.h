#pragma once

#include <napi.h>

namespace sluice {

// createCipher(mode, key, iv) → { update(data), final() }, each returning a Promise.
Napi::Value CreateCipher(const Napi::CallbackInfo& info);
void InitCipherContext(Napi::Env env);

}  // namespace sluice
