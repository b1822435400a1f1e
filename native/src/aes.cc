#include "aes.h"

#include <climits>

#include "errors.h"

namespace sluice {

CipherCtx::CipherCtx() : ctx_(EVP_CIPHER_CTX_new()) {
  if (ctx_ == nullptr) ThrowCrypto("EVP_CIPHER_CTX_new failed");
}

CipherCtx::~CipherCtx() { EVP_CIPHER_CTX_free(ctx_); }

RawCbcDecryptor::RawCbcDecryptor(const uint8_t* key) {
  if (EVP_DecryptInit_ex(ctx_.get(), EVP_aes_256_cbc(), nullptr, key, nullptr) != 1) {
    ThrowCrypto("EVP_DecryptInit_ex failed");
  }
  EVP_CIPHER_CTX_set_padding(ctx_.get(), 0);
}

void RawCbcDecryptor::Run(const uint8_t* prev, const uint8_t* in, uint8_t* out, size_t len) {
  // Only the IV changes; the key schedule set up in the constructor is kept.
  if (EVP_DecryptInit_ex(ctx_.get(), nullptr, nullptr, nullptr, prev) != 1) {
    ThrowCrypto("EVP_DecryptInit_ex failed");
  }
  CipherUpdateLarge(ctx_.get(), in, len, out);
}

size_t CipherUpdateLarge(EVP_CIPHER_CTX* ctx, const uint8_t* in, size_t len, uint8_t* out) {
  constexpr size_t kStep = size_t{1} << 30;  // a multiple of 16 that fits an int
  size_t total = 0;
  while (len > 0) {
    size_t n = len < kStep ? len : kStep;
    int outl = 0;
    if (EVP_CipherUpdate(ctx, out + total, &outl, in, static_cast<int>(n)) != 1) {
      ThrowCrypto("EVP_CipherUpdate failed");
    }
    total += static_cast<size_t>(outl);
    in += n;
    len -= n;
  }
  return total;
}

}  // namespace sluice
