// Anonymous output files: plaintext is written into an inode with no name (O_TMPFILE) and only
// linked into the directory once it is complete, so a process killed half-way (SIGKILL, OOM,
// power cut) leaves nothing readable behind — the kernel frees the inode with the last fd.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "operations.h"
#include "worker.h"

namespace sluice {

namespace {

class OpenAnonymousJob : public PromiseWorker {
 public:
  OpenAnonymousJob(Napi::Env env, std::string dir)
      : PromiseWorker(env, "sluice.openAnonymous"), dir_(std::move(dir)) {}

 protected:
  void Run() override {
#ifdef O_TMPFILE
    // Owner-only from the start: the content is plaintext.
    fd_ = ::open(dir_.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd_ < 0) ThrowIo("open", errno, dir_);
#else
    ThrowIo("open", EOPNOTSUPP, dir_);
#endif
  }

  // The fd is handed to JS, which owns and closes it.
  Napi::Value Result(Napi::Env env) override { return Napi::Number::New(env, fd_); }

 private:
  std::string dir_;
  int fd_ = -1;
};

class LinkAnonymousJob : public PromiseWorker {
 public:
  LinkAnonymousJob(Napi::Env env, int fd, std::string path)
      : PromiseWorker(env, "sluice.linkAnonymous"), fd_(fd), path_(std::move(path)) {}

 protected:
  void Run() override {
    // linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; following the fd's /proc link
    // does the same for any user (the documented way to give an O_TMPFILE file a name).
    const std::string proc = "/proc/self/fd/" + std::to_string(fd_);
    if (::linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path_.c_str(), AT_SYMLINK_FOLLOW) != 0) {
      ThrowIo("linkat", errno, path_);
    }
  }

  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  int fd_;
  std::string path_;
};

}  // namespace

Napi::Value OpenAnonymous(const Napi::CallbackInfo& info) {
  return (new OpenAnonymousJob(info.Env(), info[0].As<Napi::String>().Utf8Value()))->Start();
}

Napi::Value LinkAnonymous(const Napi::CallbackInfo& info) {
  return (new LinkAnonymousJob(info.Env(), static_cast<int>(ToInt64(info[0])),
                               info[1].As<Napi::String>().Utf8Value()))
      ->Start();
}

}  // namespace sluice
