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

// CBC encryption is sequential, so the AES thread must never wait on I/O: a reader thread and a
// writer thread move rotating slots through read → encrypt (in place) → write.
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

enum class SlotState { kFree, kRead, kEncrypted };

struct Slot {
  explicit Slot() : buf(kSlotSize + kBlock) {}
  std::unique_ptr<Mapping> input;  // this slot's window of the source, mapped by the reader
  AlignedBuffer buf;               // ciphertext, with room for the final padding block
  size_t len = 0;
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
    Fd out = OpenForWrite(b.dst, false);
    out.Truncate(b.dst_offset);  // drop old ciphertext, keep what precedes dstOffset
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    CipherCtx ctx;
    if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, b.key, b.iv) != 1) {
      ThrowCrypto("EVP_EncryptInit_ex failed");
    }

    Pipeline p;
    uint64_t total_in = 0;
    uint64_t total_out = 0;
    // The source is encrypted as it is when opened: `size` bytes. Its windows are mapped rather
    // than read, which saves copying them out of the page cache.
    const uint64_t size = in.Size();
    std::thread reader([&] {
      try {
        uint64_t off = 0;
        for (size_t i = 0;; i = (i + 1) % kSlots) {
          if (!p.Wait(i, SlotState::kFree)) return;
          Slot& s = p.slot(i);
          s.len = static_cast<size_t>(std::min<uint64_t>(kSlotSize, size - off));
          s.input = std::make_unique<Mapping>(in, off, s.len, false);
          s.input->Populate(false);
          off += s.len;
          s.last = off == size && s.len < kSlotSize;
          if (s.last) total_in = off;
          p.Set(i, SlotState::kRead);
          if (s.last) return;
        }
      } catch (...) {
        p.Fail(std::current_exception());
      }
    });
    std::thread writer;
    try {
      writer = std::thread([&] {
      try {
        uint64_t off = b.dst_offset;
        for (size_t i = 0;; i = (i + 1) % kSlots) {
          if (!p.Wait(i, SlotState::kEncrypted)) return;
          Slot& s = p.slot(i);
          out.PwriteFull(s.buf.data(), s.len, off);
          s.input.reset();  // unmapped here, off the AES thread
          // Start writeback now so the closing fsync has little left to wait for.
          ::sync_file_range(out.get(), static_cast<off_t>(off), static_cast<off_t>(s.len),
                            SYNC_FILE_RANGE_WRITE);
          off += s.len;
          const bool last = s.last;
          p.Set(i, SlotState::kFree);
          if (last) {
            total_out = off - b.dst_offset;
            return;
          }
        }
      } catch (...) {
        p.Fail(std::current_exception());
      }
    });
    } catch (...) {
      p.Fail(std::current_exception());
      reader.join();
      throw;
    }
    try {
      for (size_t i = 0;; i = (i + 1) % kSlots) {
        if (!p.Wait(i, SlotState::kRead)) break;
        Slot& s = p.slot(i);
        size_t n = CipherUpdateLarge(ctx.get(), s.input->data(), s.len, s.buf.data());
        if (s.last) {
          int fin = 0;
          if (EVP_EncryptFinal_ex(ctx.get(), s.buf.data() + n, &fin) != 1) {
            ThrowCrypto("EVP_EncryptFinal_ex failed");
          }
          n += static_cast<size_t>(fin);
        }
        s.len = n;
        const bool last = s.last;
        p.Set(i, SlotState::kEncrypted);
        if (last) break;
      }
    } catch (...) {
      p.Fail(std::current_exception());
    }
    reader.join();
    writer.join();
    if (std::exception_ptr e = p.error()) std::rethrow_exception(e);

    out.Sync();
    out.Close();
    b.bytes_read = total_in;
    b.bytes_written = total_out;
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
