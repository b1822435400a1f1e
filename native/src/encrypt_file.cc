#include <fcntl.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "aes.h"
#include "fs_util.h"
#include "operations.h"
#include "worker.h"

namespace sluice {

namespace {

// CBC encryption is sequential, so the AES thread must never wait on memory management or I/O.
// A preparing thread maps the next windows of source and destination and faults them in (the
// destination's pages are allocated there, where a full disk shows up as an error rather than
// a SIGBUS); the AES thread encrypts straight from one mapping into the other; a releasing
// thread unmaps finished windows and starts their writeback.
constexpr size_t kSlotSize = 8 * 1024 * 1024;  // a multiple of 16
constexpr size_t kSlots = 3;

struct EncryptFileBaton {
  std::string src;
  std::string dst;
  uint8_t key[kKeyLen];
  uint8_t iv[kBlock];
  uint64_t dst_offset = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

enum class SlotState { kFree, kPrepared, kEncrypted };

struct Slot {
  std::unique_ptr<Mapping> input;
  std::unique_ptr<Mapping> output;
  size_t in_len = 0;
  size_t out_len = 0;
  uint64_t out_off = 0;
  bool last = false;
  SlotState state = SlotState::kFree;
};

class Pipeline {
 public:
  // Waits until slot `i` reaches `want`; false if another stage failed.
  bool Wait(size_t i, SlotState want) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return error_ || slots_[i].state == want; });
    return !error_;
  }
  void Set(size_t i, SlotState s) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      slots_[i].state = s;
    }
    cv_.notify_all();
  }
  void Fail(std::exception_ptr e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!error_) error_ = e;
    }
    cv_.notify_all();
  }
  std::exception_ptr error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }
  Slot& slot(size_t i) { return slots_[i]; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  Slot slots_[kSlots];
  std::exception_ptr error_;
};

class EncryptFileJob : public PromiseWorker {
 public:
  EncryptFileJob(Napi::Env env, EncryptFileBaton* baton)
      : PromiseWorker(env, "sluice.encryptFile"), b_(baton) {}
  ~EncryptFileJob() override { OPENSSL_cleanse(b_->key, sizeof b_->key); }

 protected:
  void Run() override {
    EncryptFileBaton& b = *b_;
    Fd in = OpenForRead(b.src);
    // Read-write because the destination is mapped; bytes before dstOffset are kept.
    RefuseSameFile(in, b.dst);
    Fd out = OpenForWrite(b.dst, false, true);
    // The source is encrypted as it is when opened: `size` bytes.
    const uint64_t size = in.Size();
    const uint64_t ct_len = (size / kBlock + 1) * kBlock;
    out.Truncate(b.dst_offset);  // drop the old contents after dstOffset...
    out.Truncate(b.dst_offset + ct_len);  // ...then size it for the new ciphertext
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    CipherCtx ctx;
    if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, b.key, b.iv) != 1) {
      ThrowCrypto("EVP_EncryptInit_ex failed");
    }

    const uint64_t count = size == 0 ? 1 : (size + kSlotSize - 1) / kSlotSize;
    Pipeline p;
    auto stage = [&p](auto&& body) {
      return [&p, body] {
        try {
          body();
        } catch (...) {
          p.Fail(std::current_exception());
        }
      };
    };
    auto prepare = stage([&] {
      for (uint64_t k = 0; k < count; ++k) {
        const size_t i = k % kSlots;
        if (!p.Wait(i, SlotState::kFree)) return;
        Slot& s = p.slot(i);
        const uint64_t off = k * kSlotSize;
        s.last = k + 1 == count;
        s.in_len = static_cast<size_t>(std::min<uint64_t>(kSlotSize, size - off));
        s.out_len = s.last ? static_cast<size_t>(ct_len - off) : s.in_len;
        s.out_off = b.dst_offset + off;
        s.input = std::make_unique<Mapping>(in, off, s.in_len, false);
        s.input->Populate(false);
        s.output = std::make_unique<Mapping>(out, s.out_off, s.out_len, true);
        s.output->Populate(true);
        p.Set(i, SlotState::kPrepared);
      }
    });
    auto release = stage([&] {
      for (uint64_t k = 0; k < count; ++k) {
        const size_t i = k % kSlots;
        if (!p.Wait(i, SlotState::kEncrypted)) return;
        Slot& s = p.slot(i);
        s.input.reset();
        s.output.reset();
        // Start writeback now so the closing fsync has little left to wait for.
        ::sync_file_range(out.get(), static_cast<off_t>(s.out_off), static_cast<off_t>(s.out_len),
                          SYNC_FILE_RANGE_WRITE);
        p.Set(i, SlotState::kFree);
      }
    });
    auto encrypt = stage([&] {
      for (uint64_t k = 0; k < count; ++k) {
        const size_t i = k % kSlots;
        if (!p.Wait(i, SlotState::kPrepared)) return;
        Slot& s = p.slot(i);
        uint8_t* dst = s.output->data();
        size_t n = CipherUpdateLarge(ctx.get(), s.input->data(), s.in_len, dst);
        if (s.last) {
          int fin = 0;
          if (EVP_EncryptFinal_ex(ctx.get(), dst + n, &fin) != 1) {
            ThrowCrypto("EVP_EncryptFinal_ex failed");
          }
          n += static_cast<size_t>(fin);
        }
        p.Set(i, SlotState::kEncrypted);
      }
    });

    std::thread preparer;
    std::thread releaser;
    try {
      preparer = std::thread(prepare);
      releaser = std::thread(release);
    } catch (...) {
      p.Fail(std::current_exception());
    }
    encrypt();
    if (preparer.joinable()) preparer.join();
    if (releaser.joinable()) releaser.join();
    if (std::exception_ptr e = p.error()) std::rethrow_exception(e);

    out.Sync();
    out.Close();
    b.bytes_read = size;
    b.bytes_written = ct_len;
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object r = Napi::Object::New(env);
    r.Set("bytesRead", static_cast<double>(b_->bytes_read));
    r.Set("bytesWritten", static_cast<double>(b_->bytes_written));
    return r;
  }

 private:
  std::unique_ptr<EncryptFileBaton> b_;
};

}  // namespace

Napi::Value EncryptFile(const Napi::CallbackInfo& info) {
  auto b = std::make_unique<EncryptFileBaton>();
  b->src = info[0].As<Napi::String>().Utf8Value();
  b->dst = info[1].As<Napi::String>().Utf8Value();
  std::memcpy(b->key, info[2].As<Napi::Buffer<uint8_t>>().Data(), kKeyLen);
  std::memcpy(b->iv, info[3].As<Napi::Buffer<uint8_t>>().Data(), kBlock);
  b->dst_offset = static_cast<uint64_t>(ToInt64(info[4].As<Napi::Object>().Get("dstOffset")));
  return (new EncryptFileJob(info.Env(), b.release()))->Start();
}

}  // namespace sluice
