// Base for every operation: one AsyncWorker per call, settling a Promise.
// Subclasses copy or pin their inputs in the constructor (main thread), do the work in Run()
// (worker thread, no JS values), and build the resolution value in Result() (main thread).
#pragma once

#include <napi.h>

#include <vector>

#include "errors.h"

namespace sluice {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* name)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Keeps a Buffer (or any object) alive until the worker is destroyed on the main thread.
  void Pin(Napi::Object value) { pins_.push_back(Napi::Persistent(value)); }

  // Queues the worker and returns its promise; the worker deletes itself after settling.
  Napi::Promise Start() {
    Napi::Promise p = Promise();
    Queue();
    return p;
  }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

  void Execute() final {
    try {
      Run();
    } catch (...) {
      error_ = CurrentExceptionToError();
      SetError(error_.message);
    }
  }

  void OnOK() override { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error&) override { deferred_.Reject(MakeJsError(Env(), error_).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> pins_;
  JobError error_;
};

// The resolution value of the file→file operations: {bytesRead, bytesWritten}.
inline Napi::Value FileResultValue(Napi::Env env, uint64_t bytes_read, uint64_t bytes_written) {
  Napi::Object r = Napi::Object::New(env);
  r.Set("bytesRead", static_cast<double>(bytes_read));
  r.Set("bytesWritten", static_cast<double>(bytes_written));
  return r;
}

}  // namespace sluice
