// The binding's async entry points; each queues one PromiseWorker and returns its Promise.
#pragma once

#include <napi.h>

namespace sluice {

Napi::Value DecryptChunk(const Napi::CallbackInfo& info);
Napi::Value DecryptFile(const Napi::CallbackInfo& info);
Napi::Value EncryptFile(const Napi::CallbackInfo& info);
Napi::Value Split(const Napi::CallbackInfo& info);
Napi::Value Concat(const Napi::CallbackInfo& info);
Napi::Value Sha256(const Napi::CallbackInfo& info);
Napi::Value Sha256File(const Napi::CallbackInfo& info);
Napi::Value Sha256FileChunks(const Napi::CallbackInfo& info);
Napi::Value OpenAnonymous(const Napi::CallbackInfo& info);
Napi::Value LinkAnonymous(const Napi::CallbackInfo& info);

// Reads a JS number argument as a 64-bit integer (the facade has range-checked it).
inline int64_t ToInt64(const Napi::Value& v) { return v.As<Napi::Number>().Int64Value(); }

}  // namespace sluice
