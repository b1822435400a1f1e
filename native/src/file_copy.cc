#include <fcntl.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "fs_util.h"
#include "operations.h"
#include "worker.h"

namespace sluice {

namespace {

// Copied in steps so writeback of one step overlaps copying the next, and the closing fsync
// has little left to wait for.
constexpr size_t kCopyStep = 64 * 1024 * 1024;
constexpr size_t kFallbackBuffer = 8 * 1024 * 1024;

// Copies `len` bytes (or to end of file when len is UINT64_MAX) from in@in_off to out@out_off.
// Uses copy_file_range, falling back to read/write where the kernel or filesystem cannot.
uint64_t CopyRange(const Fd& in, uint64_t in_off, const Fd& out, uint64_t out_off, uint64_t len) {
  uint64_t done = 0;
  bool use_cfr = true;
  std::unique_ptr<AlignedBuffer> buf;
  while (done < len) {
    const uint64_t want64 = len - done;
    if (use_cfr) {
      loff_t src = static_cast<loff_t>(in_off + done);
      loff_t dst = static_cast<loff_t>(out_off + done);
      size_t want = want64 < kCopyStep ? static_cast<size_t>(want64) : kCopyStep;
      ssize_t n = ::copy_file_range(in.get(), &src, out.get(), &dst, want, 0);
      if (n > 0) {
        ::sync_file_range(out.get(), static_cast<off_t>(out_off + done), n, SYNC_FILE_RANGE_WRITE);
        done += static_cast<uint64_t>(n);
        continue;
      }
      if (n == 0) break;  // end of input
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL) {
        use_cfr = false;
        continue;
      }
      const bool out_side = errno == ENOSPC || errno == EDQUOT || errno == EFBIG;
      ThrowIo("copy_file_range", errno, out_side ? out.path() : in.path());
    }
    if (!buf) buf = std::make_unique<AlignedBuffer>(kFallbackBuffer);
    size_t want = want64 < kFallbackBuffer ? static_cast<size_t>(want64) : kFallbackBuffer;
    size_t n = in.PreadFull(buf->data(), want, in_off + done);
    if (n == 0) break;
    out.PwriteFull(buf->data(), n, out_off + done);
    ::sync_file_range(out.get(), static_cast<off_t>(out_off + done), static_cast<off_t>(n),
                      SYNC_FILE_RANGE_WRITE);
    done += n;
  }
  return done;
}

class SplitJob : public PromiseWorker {
 public:
  SplitJob(Napi::Env env, std::string src, std::string small, std::string big, uint64_t small_size)
      : PromiseWorker(env, "sluice.split"),
        src_(std::move(src)),
        small_(std::move(small)),
        big_(std::move(big)),
        small_size_(small_size) {}

 protected:
  void Run() override {
    Fd in = OpenForRead(src_);
    const uint64_t size = in.Size();
    const uint64_t small_len = small_size_ < size ? small_size_ : size;
    RefuseSameFile(in, small_);
    RefuseSameFile(in, big_);
    Fd small = OpenForWrite(small_, true);
    Fd big = OpenForWrite(big_, true);
    CopyRange(in, 0, small, 0, small_len);
    CopyRange(in, small_len, big, 0, UINT64_MAX);
    small.Sync();
    big.Sync();
    small.Close();
    big.Close();
  }

  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::string src_, small_, big_;
  uint64_t small_size_;
};

class ConcatJob : public PromiseWorker {
 public:
  ConcatJob(Napi::Env env, std::vector<std::string> paths, std::string dst)
      : PromiseWorker(env, "sluice.concat"), paths_(std::move(paths)), dst_(std::move(dst)) {}

 protected:
  void Run() override {
    // Inputs are opened before the output is truncated, so a missing input or one that is the
    // output itself leaves dst untouched.
    std::vector<Fd> inputs;
    inputs.reserve(paths_.size());
    for (const std::string& p : paths_) {
      inputs.push_back(OpenForRead(p));
      RefuseSameFile(inputs.back(), dst_);
    }
    Fd out = OpenForWrite(dst_, true);
    uint64_t off = 0;
    for (const Fd& in : inputs) {
      off += CopyRange(in, 0, out, off, UINT64_MAX);
    }
    out.Sync();
    out.Close();
  }

  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  std::vector<std::string> paths_;
  std::string dst_;
};

}  // namespace

Napi::Value Split(const Napi::CallbackInfo& info) {
  return (new SplitJob(info.Env(), info[0].As<Napi::String>().Utf8Value(),
                       info[1].As<Napi::String>().Utf8Value(),
                       info[2].As<Napi::String>().Utf8Value(),
                       static_cast<uint64_t>(ToInt64(info[3]))))
      ->Start();
}

Napi::Value Concat(const Napi::CallbackInfo& info) {
  Napi::Array arr = info[0].As<Napi::Array>();
  std::vector<std::string> paths;
  paths.reserve(arr.Length());
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    paths.push_back(arr.Get(i).As<Napi::String>().Utf8Value());
  }
  return (new ConcatJob(info.Env(), std::move(paths), info[1].As<Napi::String>().Utf8Value()))
      ->Start();
}

}  // namespace sluice
