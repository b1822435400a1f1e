// Job errors: produced on worker threads as plain data, turned into JS Errors on the main thread.
#pragma once

#include <napi.h>

#include <exception>
#include <string>

namespace sluice {

enum class ErrorCode { kNone, kBadDecrypt, kCrypto, kIo };

struct JobError {
  ErrorCode code = ErrorCode::kNone;
  std::string message;
  std::string syscall;  // ERR_IO only
  int errnum = 0;       // ERR_IO only, positive
  std::string path;     // ERR_IO only, when known
};

// Thrown inside a job (never across a thread boundary; see ThreadPool and PromiseWorker).
class Failure : public std::exception {
 public:
  explicit Failure(JobError error) : error_(std::move(error)) {}
  const char* what() const noexcept override { return error_.message.c_str(); }
  const JobError& error() const { return error_; }

 private:
  JobError error_;
};

[[noreturn]] void ThrowIo(const char* syscall, int errnum, const std::string& path);
[[noreturn]] void ThrowCrypto(const char* what);
[[noreturn]] void ThrowBadDecrypt(const char* what);

// Converts any exception escaping a job into a JobError.
JobError CurrentExceptionToError();

Napi::Error MakeJsError(Napi::Env env, const JobError& error);

}  // namespace sluice
