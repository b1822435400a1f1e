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
// A preparing thread maps (and faults in) the next windows of the source; the AES thread
// encrypts from there into the slot's output; a releasing thread writes the output out and
// frees the slot. Output goes to disk with O_DIRECT where the filesystem allows it (no
// page-cache allocation for the fresh file, flat RSS); otherwise the destination is mapped
// too, its pages allocated by the preparing thread (a full disk shows up there as an error
// rather than a SIGBUS) and its writeback started as each window is released.
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
  std::unique_ptr<Mapping> output;   // page-cache path
  std::unique_ptr<AlignedBuffer> buf;  // O_DIRECT path: carried-over bytes, then ciphertext
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
    // Read-write because the destination may be mapped; bytes before dstOffset are kept.
    RefuseSameFile(in, b.dst);
    Fd out = OpenForWrite(b.dst, false, true);
    Fd direct = OpenDirect(b.dst);
    const bool use_direct = direct.get() >= 0;
    // The source is encrypted as it is when opened: `size` bytes.
    const uint64_t size = in.Size();
    const uint64_t ct_len = (size / kBlock + 1) * kBlock;
    const uint64_t end = b.dst_offset + ct_len;
    out.Truncate(b.dst_offset);  // drop the old contents after dstOffset, then size for the new
    out.Reserve(b.dst_offset, use_direct ? (end + kDirectAlign - 1) & ~(kDirectAlign - 1) : end);
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    // Direct writes cover whole aligned sectors: each one starts with the `lead` bytes left over
    // from the previous slot (at first, the bytes already in dst before dstOffset).
    const size_t lead = static_cast<size_t>(b.dst_offset % kDirectAlign);
    uint64_t direct_pos = b.dst_offset - lead;
    uint8_t carry[kDirectAlign];
    size_t carry_len = lead;
    if (use_direct && lead > 0 && out.PreadFull(carry, lead, direct_pos) != lead) {
      std::memset(carry, 0, lead);
    }

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
        if (use_direct) {
          if (!s.buf) s.buf = std::make_unique<AlignedBuffer>(kSlotSize + 2 * kDirectAlign);
        } else {
          s.output = std::make_unique<Mapping>(out, s.out_off, s.out_len, true);
          s.output->Populate(true);
        }
        p.Set(i, SlotState::kPrepared);
      }
    });
    auto release = stage([&] {
      for (uint64_t k = 0; k < count; ++k) {
        const size_t i = k % kSlots;
        if (!p.Wait(i, SlotState::kEncrypted)) return;
        Slot& s = p.slot(i);
        s.input.reset();
        if (use_direct) {
          uint8_t* data = s.buf->data();
          std::memcpy(data, carry, carry_len);
          const size_t total = carry_len + s.out_len;
          size_t span = total - total % kDirectAlign;
          if (s.last) {  // pad to a whole sector; the closing truncate cuts it off
            span = (total + kDirectAlign - 1) & ~(kDirectAlign - 1);
            std::memset(data + total, 0, span - total);
          }
          if (!direct.TryPwriteDirect(data, span, direct_pos)) {
            out.PwriteFull(data, s.last ? total : span, direct_pos);
          }
          carry_len = s.last ? 0 : total - span;
          std::memcpy(carry, data + span, carry_len);
          direct_pos += span;
        } else {
          s.output.reset();
          // Start writeback now so the closing fsync has little left to wait for.
          ::sync_file_range(out.get(), static_cast<off_t>(s.out_off),
                            static_cast<off_t>(s.out_len), SYNC_FILE_RANGE_WRITE);
        }
        p.Set(i, SlotState::kFree);
      }
    });
    auto encrypt = stage([&] {
      for (uint64_t k = 0; k < count; ++k) {
        const size_t i = k % kSlots;
        if (!p.Wait(i, SlotState::kPrepared)) return;
        Slot& s = p.slot(i);
        // The carry is the same size before every slot but the last, so the ciphertext can be
        // placed right after it without knowing the previous slot's leftovers.
        uint8_t* dst = use_direct ? s.buf->data() + lead : s.output->data();
        size_t n = CipherUpdateLarge(ctx.get(), s.input->data(), s.in_len, dst);
        if (s.last) {
          int fin = 0;
          if (EVP_EncryptFinal_ex(ctx.get(), dst + n, &fin) != 1) {
            ThrowCrypto("EVP_EncryptFinal_ex failed");
          }
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

    FinishOutput(out, direct, end);
    b.bytes_read = size;
    b.bytes_written = ct_len;
  }

  Napi::Value Result(Napi::Env env) override {
    return FileResultValue(env, b_->bytes_read, b_->bytes_written);
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
