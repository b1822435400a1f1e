#include <fcntl.h>
#include <openssl/crypto.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <string>

#include "aes.h"
#include "fs_util.h"
#include "operations.h"
#include "thread_pool.h"
#include "worker.h"

namespace sluice {

namespace {

// Each thread decrypts whole windows in place in its own buffer; windows are handed out in
// order so the threads stay on neighbouring parts of the file.
constexpr size_t kWindow = 4 * 1024 * 1024;

struct DecryptFileBaton {
  std::string src;
  std::string dst;
  uint8_t key[kKeyLen];
  uint8_t iv[kBlock];
  size_t threads = 1;
  uint64_t src_offset = 0;
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
};

class DecryptFileJob : public PromiseWorker {
 public:
  DecryptFileJob(Napi::Env env, DecryptFileBaton* baton)
      : PromiseWorker(env, "sluice.decryptFile"), b_(baton) {}
  ~DecryptFileJob() override { OPENSSL_cleanse(b_->key, sizeof b_->key); }

 protected:
  void Run() override {
    DecryptFileBaton& b = *b_;
    Fd in = OpenForRead(b.src);
    const uint64_t size = in.Size();
    const uint64_t ct_len = size > b.src_offset ? size - b.src_offset : 0;
    if (ct_len == 0 || ct_len % kBlock != 0) {
      ThrowBadDecrypt("bad decrypt: ciphertext length is not a positive multiple of 16");
    }
    ::posix_fadvise(in.get(), 0, 0, POSIX_FADV_SEQUENTIAL);

    // Validate the padding from the last block before any output exists.
    uint8_t tail[2 * kBlock];
    if (ct_len >= 2 * kBlock) {
      if (in.PreadFull(tail, sizeof tail, b.src_offset + ct_len - 2 * kBlock) != sizeof tail) {
        ThrowBadDecrypt("bad decrypt: ciphertext shrank while reading");
      }
    } else {
      std::memcpy(tail, b.iv, kBlock);
      if (in.PreadFull(tail + kBlock, kBlock, b.src_offset) != kBlock) {
        ThrowBadDecrypt("bad decrypt: ciphertext shrank while reading");
      }
    }
    uint8_t last[kBlock];
    RawCbcDecryptor(b.key).Run(tail, tail + kBlock, last, kBlock);
    const unsigned pad = last[kBlock - 1];
    bool ok = pad >= 1 && pad <= kBlock;
    for (unsigned i = 1; ok && i <= pad; ++i) ok = last[kBlock - i] == pad;
    OPENSSL_cleanse(last, sizeof last);
    if (!ok) ThrowBadDecrypt("bad decrypt: wrong key or corrupt ciphertext (padding check failed)");
    const uint64_t pt_len = ct_len - pad;

    // Output goes to disk with O_DIRECT where the filesystem allows it: page-cache allocation
    // for the fresh output is the dominant cost of file->file work, O_DIRECT skips it, keeps
    // RSS and page cache flat and leaves fsync nothing to wait for. Elsewhere each thread
    // decrypts straight into a mapped window of the output (read-write for that reason), so
    // page allocation runs on all threads at once, which buffered writes would serialise.
    RefuseSameFile(in, b.dst);
    Fd out = OpenForWrite(b.dst, true, true);
    Fd direct = OpenDirect(b.dst);
    const uint64_t rounded = (pt_len + kDirectAlign - 1) & ~(kDirectAlign - 1);
    out.Reserve(0, direct.get() >= 0 ? rounded : pt_len);
    const uint64_t windows = (ct_len + kWindow - 1) / kWindow;
    std::atomic<uint64_t> next{0};
    std::atomic<bool> failed{false};
    size_t threads = b.threads > 0 ? b.threads : 1;
    if (threads > windows) threads = static_cast<size_t>(windows);
    ParallelFor(threads, [&](size_t) {
      try {
        RawCbcDecryptor dec(b.key);
        std::unique_ptr<AlignedBuffer> buf;
        if (direct.get() >= 0) buf = std::make_unique<AlignedBuffer>(kWindow);
        uint64_t w;
        while (!failed.load(std::memory_order_relaxed) && (w = next.fetch_add(1)) < windows) {
          const uint64_t off = w * kWindow;
          const size_t len = static_cast<size_t>(ct_len - off < kWindow ? ct_len - off : kWindow);
          const size_t keep = static_cast<size_t>(pt_len - off < len ? pt_len - off : len);
          // Windows are mapped and unmapped one at a time so RSS stays flat.
          const size_t lead = off == 0 ? 0 : kBlock;
          Mapping input(in, b.src_offset + off - lead, lead + len, false);
          input.Populate(false);
          const uint8_t* prev = off == 0 ? b.iv : input.data();
          const uint8_t* src = input.data() + lead;
          if (keep == 0) continue;
          if (buf) {
            dec.Run(prev, src, buf->data(), len);
            // Whole sectors only; the padding and the zeroed rest are cut off by the truncate.
            const size_t span = (keep + kDirectAlign - 1) & ~(kDirectAlign - 1);
            std::memset(buf->data() + keep, 0, span - keep);
            if (!direct.TryPwriteDirect(buf->data(), span, off)) out.PwriteFull(buf->data(), keep, off);
            continue;
          }
          Mapping output(out, off, keep, true);
          output.Populate(true);
          const size_t whole = keep & ~(kBlock - 1);
          dec.Run(prev, src, output.data(), whole);
          if (keep > whole) {  // the last block, cut short by the padding
            uint8_t block[kBlock];
            dec.Run(whole == 0 ? prev : src + whole - kBlock, src + whole, block, kBlock);
            std::memcpy(output.data() + whole, block, keep - whole);
            OPENSSL_cleanse(block, sizeof block);
          }
          // Start writeback now so the closing fsync has little left to wait for.
          ::sync_file_range(out.get(), static_cast<off_t>(off), static_cast<off_t>(keep),
                            SYNC_FILE_RANGE_WRITE);
        }
      } catch (...) {
        failed = true;
        throw;
      }
    });
    FinishOutput(out, direct, pt_len);
    b.bytes_read = ct_len;
    b.bytes_written = pt_len;
  }

  Napi::Value Result(Napi::Env env) override {
    return FileResultValue(env, b_->bytes_read, b_->bytes_written);
  }

 private:
  std::unique_ptr<DecryptFileBaton> b_;
};

}  // namespace

Napi::Value DecryptFile(const Napi::CallbackInfo& info) {
  auto b = std::make_unique<DecryptFileBaton>();
  b->src = info[0].As<Napi::String>().Utf8Value();
  b->dst = info[1].As<Napi::String>().Utf8Value();
  std::memcpy(b->key, info[2].As<Napi::Buffer<uint8_t>>().Data(), kKeyLen);
  std::memcpy(b->iv, info[3].As<Napi::Buffer<uint8_t>>().Data(), kBlock);
  Napi::Object opts = info[4].As<Napi::Object>();
  b->threads = static_cast<size_t>(ToInt64(opts.Get("threads")));
  b->src_offset = static_cast<uint64_t>(ToInt64(opts.Get("srcOffset")));
  return (new DecryptFileJob(info.Env(), b.release()))->Start();
}

}  // namespace sluice
