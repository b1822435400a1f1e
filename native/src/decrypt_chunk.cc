#include <openssl/crypto.h>

#include <cstring>

#include "aes.h"
#include "operations.h"
#include "thread_pool.h"
#include "worker.h"

namespace sluice {

namespace {

// Below this many bytes per thread, handing work to another thread costs more than it saves.
constexpr size_t kMinSegment = 64 * 1024;

class DecryptChunkJob : public PromiseWorker {
 public:
  DecryptChunkJob(Napi::Env env, Napi::Buffer<uint8_t> ct, Napi::Buffer<uint8_t> prev,
                  Napi::Buffer<uint8_t> key, Napi::Buffer<uint8_t> out, size_t threads)
      : PromiseWorker(env, "sluice.decryptChunk"),
        ct_(ct.Data()),
        len_(ct.Length()),
        out_(out.Data()),
        threads_(threads) {
    Pin(ct);
    Pin(out);
    std::memcpy(prev_, prev.Data(), kBlock);
    std::memcpy(key_, key.Data(), kKeyLen);
  }
  ~DecryptChunkJob() override { OPENSSL_cleanse(key_, sizeof key_); }

 protected:
  void Run() override {
    const size_t blocks = len_ / kBlock;
    size_t parts = threads_ > 0 ? threads_ : 1;
    if (parts > 1 && len_ / parts < kMinSegment) parts = len_ / kMinSegment > 1 ? len_ / kMinSegment : 1;
    if (parts > blocks) parts = blocks > 0 ? blocks : 1;
    ParallelFor(parts, [&](size_t i) {
      const size_t first = blocks * i / parts;
      const size_t last = blocks * (i + 1) / parts;
      if (first == last) return;
      const uint8_t* prev = first == 0 ? prev_ : ct_ + (first - 1) * kBlock;
      RawCbcDecryptor dec(key_);
      dec.Run(prev, ct_ + first * kBlock, out_ + first * kBlock, (last - first) * kBlock);
    });
  }

  Napi::Value Result(Napi::Env env) override {
    return Napi::Number::New(env, static_cast<double>(len_));
  }

 private:
  const uint8_t* ct_;
  size_t len_;
  uint8_t* out_;
  size_t threads_;
  uint8_t prev_[kBlock];
  uint8_t key_[kKeyLen];
};

}  // namespace

Napi::Value DecryptChunk(const Napi::CallbackInfo& info) {
  Napi::Object opts = info[4].As<Napi::Object>();
  auto* job = new DecryptChunkJob(info.Env(), info[0].As<Napi::Buffer<uint8_t>>(),
                                  info[1].As<Napi::Buffer<uint8_t>>(),
                                  info[2].As<Napi::Buffer<uint8_t>>(),
                                  info[3].As<Napi::Buffer<uint8_t>>(),
                                  static_cast<size_t>(ToInt64(opts.Get("threads"))));
  return job->Start();
}

}  // namespace sluice
