// Module entry: exports the binding described in ../index.d.ts.
#include <napi.h>
#include <openssl/crypto.h>

#include "cipher_context.h"
#include "operations.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  sluice::InitCipherContext(env);
  exports.Set("opensslVersion", Napi::String::New(env, OpenSSL_version(OPENSSL_VERSION)));
  exports.Set("createCipher", Napi::Function::New<sluice::CreateCipher>(env, "createCipher"));
  exports.Set("encryptFile", Napi::Function::New<sluice::EncryptFile>(env, "encryptFile"));
  exports.Set("decryptFile", Napi::Function::New<sluice::DecryptFile>(env, "decryptFile"));
  exports.Set("decryptChunk", Napi::Function::New<sluice::DecryptChunk>(env, "decryptChunk"));
  exports.Set("split", Napi::Function::New<sluice::Split>(env, "split"));
  exports.Set("concat", Napi::Function::New<sluice::Concat>(env, "concat"));
  exports.Set("sha256", Napi::Function::New<sluice::Sha256>(env, "sha256"));
  exports.Set("sha256File", Napi::Function::New<sluice::Sha256File>(env, "sha256File"));
  exports.Set("sha256FileChunks",
              Napi::Function::New<sluice::Sha256FileChunks>(env, "sha256FileChunks"));
  exports.Set("openAnonymous", Napi::Function::New<sluice::OpenAnonymous>(env, "openAnonymous"));
  exports.Set("linkAnonymous", Napi::Function::New<sluice::LinkAnonymous>(env, "linkAnonymous"));
  return exports;
}

}  // namespace

NODE_API_MODULE(sluice_native, Init)
