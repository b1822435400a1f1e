// AES-256-CBC helpers over the EVP interface of the OpenSSL that the node binary exports.
#pragma once

#include <openssl/evp.h>

#include <cstddef>
#include <cstdint>

namespace sluice {

constexpr size_t kBlock = 16;
constexpr size_t kKeyLen = 32;

class CipherCtx {
 public:
  CipherCtx();
  CipherCtx(const CipherCtx&) = delete;
  CipherCtx& operator=(const CipherCtx&) = delete;
  ~CipherCtx();
  EVP_CIPHER_CTX* get() const { return ctx_; }

 private:
  EVP_CIPHER_CTX* ctx_;
};

// Raw CBC decryption (no padding) with a reusable key schedule: Init once, then Run per segment.
class RawCbcDecryptor {
 public:
  explicit RawCbcDecryptor(const uint8_t* key);
  // Decrypts `len` (a multiple of 16) bytes; `prev` is the ciphertext block before `in`.
  // `in` == `out` (in place) is allowed; other overlaps are not.
  void Run(const uint8_t* prev, const uint8_t* in, uint8_t* out, size_t len);

 private:
  CipherCtx ctx_;
};

// EVP_CipherUpdate over any length (EVP takes int lengths). Returns the bytes written.
size_t CipherUpdateLarge(EVP_CIPHER_CTX* ctx, const uint8_t* in, size_t len, uint8_t* out);

}  // namespace sluice
