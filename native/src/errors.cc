#include "errors.h"

#include <openssl/err.h>

#include <cstring>
#include <new>

namespace sluice {

namespace {

// Drains this thread's OpenSSL error queue so stale entries never leak into a later job.
std::string DrainOpensslErrors() {
  std::string text;
  unsigned long e;
  while ((e = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    if (!text.empty()) text += "; ";
    text += buf;
  }
  return text;
}

}  // namespace

void ThrowIo(const char* syscall, int errnum, const std::string& path) {
  JobError e;
  e.code = ErrorCode::kIo;
  e.syscall = syscall;
  e.errnum = errnum;
  e.path = path;
  const char* name = strerrorname_np(errnum);
  e.message = std::string(name ? name : "EIO") + ": " + std::strerror(errnum) + ", " + syscall;
  if (!path.empty()) e.message += " '" + path + "'";
  throw Failure(std::move(e));
}

void ThrowCrypto(const char* what) {
  JobError e;
  e.code = ErrorCode::kCrypto;
  e.message = what;
  std::string detail = DrainOpensslErrors();
  if (!detail.empty()) e.message += ": " + detail;
  throw Failure(std::move(e));
}

void ThrowBadDecrypt(const char* what) {
  DrainOpensslErrors();
  JobError e;
  e.code = ErrorCode::kBadDecrypt;
  e.message = what;
  throw Failure(std::move(e));
}

JobError CurrentExceptionToError() {
  try {
    throw;
  } catch (const Failure& f) {
    return f.error();
  } catch (const std::bad_alloc&) {
    JobError e;
    e.code = ErrorCode::kIo;
    e.syscall = "malloc";
    e.errnum = ENOMEM;
    e.message = "ENOMEM: out of memory";
    return e;
  } catch (const std::exception& x) {
    JobError e;
    e.code = ErrorCode::kCrypto;
    e.message = x.what();
    return e;
  } catch (...) {
    JobError e;
    e.code = ErrorCode::kCrypto;
    e.message = "unknown native failure";
    return e;
  }
}

Napi::Error MakeJsError(Napi::Env env, const JobError& error) {
  Napi::Error err = Napi::Error::New(env, error.message);
  Napi::Object obj = err.Value();
  switch (error.code) {
    case ErrorCode::kBadDecrypt:
      obj.Set("code", "ERR_BAD_DECRYPT");
      break;
    case ErrorCode::kIo:
      obj.Set("code", "ERR_IO");
      if (!error.syscall.empty()) obj.Set("syscall", error.syscall);
      if (error.errnum != 0) obj.Set("errno", error.errnum);
      if (!error.path.empty()) obj.Set("path", error.path);
      break;
    default:
      obj.Set("code", "ERR_CRYPTO");
      break;
  }
  return err;
}

}  // namespace sluice
