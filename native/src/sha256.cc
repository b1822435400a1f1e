#include <fcntl.h>
#include <openssl/evp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"
#include "fs_util.h"
#include "operations.h"
#include "thread_pool.h"
#include "worker.h"

namespace sluice {

namespace {

constexpr size_t kDigestLen = 32;
constexpr size_t kWindow = 4 * 1024 * 1024;

class Digest {
 public:
  Digest() : ctx_(EVP_MD_CTX_new()) {
    if (ctx_ == nullptr || EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr) != 1) {
      EVP_MD_CTX_free(ctx_);
      ThrowCrypto("EVP_DigestInit_ex(sha256) failed");
    }
  }
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  ~Digest() { EVP_MD_CTX_free(ctx_); }

  void Update(const uint8_t* data, size_t len) {
    if (EVP_DigestUpdate(ctx_, data, len) != 1) ThrowCrypto("EVP_DigestUpdate failed");
  }
  void Final(uint8_t* out) {
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(ctx_, out, &n) != 1) ThrowCrypto("EVP_DigestFinal_ex failed");
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Hashes up to `len` bytes of `in` from `offset`, stopping at end of file. The file is mapped
// window by window (no copy out of the page cache, flat RSS).
void HashRange(const Fd& in, uint64_t offset, uint64_t len, uint8_t* out) {
  const uint64_t size = in.Size();
  const uint64_t end = offset >= size ? offset : offset + std::min(len, size - offset);
  Digest d;
  for (uint64_t off = offset; off < end; off += kWindow) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kWindow, end - off));
    Mapping window(in, off, n, false);
    window.Populate(false);
    d.Update(window.data(), n);
  }
  d.Final(out);
}

class Sha256Job : public PromiseWorker {
 public:
  Sha256Job(Napi::Env env, Napi::Buffer<uint8_t> data)
      : PromiseWorker(env, "sluice.sha256"), data_(data.Data()), len_(data.Length()) {
    Pin(data);
  }

 protected:
  void Run() override {
    Digest d;
    d.Update(data_, len_);
    d.Final(digest_);
  }
  Napi::Value Result(Napi::Env env) override {
    return Napi::Buffer<uint8_t>::Copy(env, digest_, kDigestLen);
  }

 private:
  const uint8_t* data_;
  size_t len_;
  uint8_t digest_[kDigestLen];
};

class Sha256FileJob : public PromiseWorker {
 public:
  Sha256FileJob(Napi::Env env, std::string path, uint64_t offset, int64_t length)
      : PromiseWorker(env, "sluice.sha256File"),
        path_(std::move(path)),
        offset_(offset),
        length_(length) {}

 protected:
  void Run() override {
    Fd in = OpenForRead(path_);
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);
    HashRange(in, offset_, length_ < 0 ? UINT64_MAX : static_cast<uint64_t>(length_), digest_);
  }
  Napi::Value Result(Napi::Env env) override {
    return Napi::Buffer<uint8_t>::Copy(env, digest_, kDigestLen);
  }

 private:
  std::string path_;
  uint64_t offset_;
  int64_t length_;
  uint8_t digest_[kDigestLen];
};

// Chunks are independent, so they are hashed in parallel on the pool.
class Sha256FileChunksJob : public PromiseWorker {
 public:
  Sha256FileChunksJob(Napi::Env env, std::string path, uint64_t offset, uint64_t chunk)
      : PromiseWorker(env, "sluice.sha256FileChunks"),
        path_(std::move(path)),
        offset_(offset),
        chunk_(chunk) {}

 protected:
  void Run() override {
    Fd in = OpenForRead(path_);
    if (chunk_ == 0) ThrowIo("read", EINVAL, path_);  // the facade never sends 0; never divide by it
    const uint64_t size = in.Size();
    const uint64_t span = size > offset_ ? size - offset_ : 0;
    const uint64_t count = (span + chunk_ - 1) / chunk_;
    digests_.resize(count * kDigestLen);
    std::atomic<uint64_t> next{0};
    std::atomic<bool> failed{false};
    const size_t threads =
        static_cast<size_t>(std::min<uint64_t>(count, std::max(2u, std::thread::hardware_concurrency())));
    ParallelFor(threads, [&](size_t) {
      try {
        uint64_t i;
        while (!failed.load(std::memory_order_relaxed) && (i = next.fetch_add(1)) < count) {
          const uint64_t off = offset_ + i * chunk_;
          const uint64_t len = std::min<uint64_t>(chunk_, size - off);
          HashRange(in, off, len, digests_.data() + i * kDigestLen);
        }
      } catch (...) {
        failed = true;
        throw;
      }
    });
  }
  Napi::Value Result(Napi::Env env) override {
    const size_t count = digests_.size() / kDigestLen;
    Napi::Array arr = Napi::Array::New(env, count);
    for (size_t i = 0; i < count; ++i) {
      arr.Set(static_cast<uint32_t>(i),
              Napi::Buffer<uint8_t>::Copy(env, digests_.data() + i * kDigestLen, kDigestLen));
    }
    return arr;
  }

 private:
  std::string path_;
  uint64_t offset_;
  uint64_t chunk_;
  std::vector<uint8_t> digests_;
};

}  // namespace

Napi::Value Sha256(const Napi::CallbackInfo& info) {
  return (new Sha256Job(info.Env(), info[0].As<Napi::Buffer<uint8_t>>()))->Start();
}

Napi::Value Sha256File(const Napi::CallbackInfo& info) {
  return (new Sha256FileJob(info.Env(), info[0].As<Napi::String>().Utf8Value(),
                            static_cast<uint64_t>(ToInt64(info[1])), ToInt64(info[2])))
      ->Start();
}

Napi::Value Sha256FileChunks(const Napi::CallbackInfo& info) {
  return (new Sha256FileChunksJob(info.Env(), info[0].As<Napi::String>().Utf8Value(),
                                  static_cast<uint64_t>(ToInt64(info[1])),
                                  static_cast<uint64_t>(ToInt64(info[2]))))
      ->Start();
}

}  // namespace sluice
