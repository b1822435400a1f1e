#include "cipher_context.h"

#include <cstdlib>
#include <deque>
#include <memory>

#include "aes.h"
#include "worker.h"

namespace sluice {

namespace {

class CipherJob;

// One streaming AES-256-CBC (PKCS#7) context. Calls are serialised: a job that arrives while
// another is in flight waits in `pending_`, so the EVP context is never used by two threads.
class CipherContext : public Napi::ObjectWrap<CipherContext> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit CipherContext(const Napi::CallbackInfo& info);

  EVP_CIPHER_CTX* ctx() const { return evp_.get(); }
  bool encrypt() const { return encrypt_; }
  // Called on the main thread when the running job has settled.
  void JobDone();

 private:
  Napi::Value Update(const Napi::CallbackInfo& info);
  Napi::Value Final(const Napi::CallbackInfo& info);
  Napi::Value Enqueue(const Napi::CallbackInfo& info, bool final);

  CipherCtx evp_;
  bool encrypt_ = true;
  bool finalized_ = false;
  bool busy_ = false;
  std::deque<CipherJob*> pending_;
};

class CipherJob : public PromiseWorker {
 public:
  CipherJob(Napi::Env env, CipherContext* owner, Napi::Object self, bool final)
      : PromiseWorker(env, "sluice.cipher"), owner_(owner), final_(final) {
    Pin(self);  // the context object outlives its jobs
  }
  ~CipherJob() override { std::free(out_); }

  void SetInput(Napi::Buffer<uint8_t> data) {
    Pin(data);
    in_ = data.Data();
    in_len_ = data.Length();
  }

 protected:
  void Run() override {
    out_ = static_cast<uint8_t*>(std::malloc(in_len_ + 2 * kBlock));
    if (out_ == nullptr) throw std::bad_alloc();
    if (final_) {
      int outl = 0;
      if (EVP_CipherFinal_ex(owner_->ctx(), out_, &outl) != 1) {
        if (owner_->encrypt()) ThrowCrypto("EVP_EncryptFinal_ex failed");
        ThrowBadDecrypt("bad decrypt: wrong key or corrupt ciphertext (padding check failed)");
      }
      out_len_ = static_cast<size_t>(outl);
    } else {
      out_len_ = CipherUpdateLarge(owner_->ctx(), in_, in_len_, out_);
    }
  }

  Napi::Value Result(Napi::Env env) override {
    if (out_len_ == 0) return Napi::Buffer<uint8_t>::New(env, 0);
    uint8_t* data = out_;
    out_ = nullptr;  // ownership moves to the Buffer (or is freed right away if copied)
    return Napi::Buffer<uint8_t>::NewOrCopy(env, data, out_len_,
                                            [](Napi::Env, uint8_t* p) { std::free(p); });
  }

  void OnOK() override {
    PromiseWorker::OnOK();
    owner_->JobDone();
  }
  void OnError(const Napi::Error& e) override {
    PromiseWorker::OnError(e);
    owner_->JobDone();
  }

 private:
  CipherContext* owner_;
  bool final_;
  const uint8_t* in_ = nullptr;
  size_t in_len_ = 0;
  uint8_t* out_ = nullptr;
  size_t out_len_ = 0;
};

Napi::Function CipherContext::Define(Napi::Env env) {
  return DefineClass(env, "CipherContext",
                     {InstanceMethod<&CipherContext::Update>("update"),
                      InstanceMethod<&CipherContext::Final>("final")});
}

CipherContext::CipherContext(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<CipherContext>(info) {
  encrypt_ = info[0].As<Napi::String>().Utf8Value() == "encrypt";
  auto key = info[1].As<Napi::Buffer<uint8_t>>();
  auto iv = info[2].As<Napi::Buffer<uint8_t>>();
  if (EVP_CipherInit_ex(evp_.get(), EVP_aes_256_cbc(), nullptr, key.Data(), iv.Data(),
                        encrypt_ ? 1 : 0) != 1) {
    try {
      ThrowCrypto("EVP_CipherInit_ex failed");
    } catch (const Failure& f) {
      throw MakeJsError(info.Env(), f.error());
    }
  }
}

Napi::Value CipherContext::Update(const Napi::CallbackInfo& info) { return Enqueue(info, false); }
Napi::Value CipherContext::Final(const Napi::CallbackInfo& info) { return Enqueue(info, true); }

Napi::Value CipherContext::Enqueue(const Napi::CallbackInfo& info, bool final) {
  Napi::Env env = info.Env();
  if (finalized_) {
    auto deferred = Napi::Promise::Deferred::New(env);
    JobError e;
    e.code = ErrorCode::kCrypto;
    e.message = "cipher context already finalized";
    deferred.Reject(MakeJsError(env, e).Value());
    return deferred.Promise();
  }
  auto* job = new CipherJob(env, this, info.This().As<Napi::Object>(), final);
  if (final) {
    finalized_ = true;
  } else {
    job->SetInput(info[0].As<Napi::Buffer<uint8_t>>());
  }
  Napi::Promise promise = job->Promise();
  if (busy_) {
    pending_.push_back(job);
  } else {
    busy_ = true;
    job->Queue();
  }
  return promise;
}

void CipherContext::JobDone() {
  busy_ = false;
  if (pending_.empty()) return;
  CipherJob* next = pending_.front();
  pending_.pop_front();
  busy_ = true;
  next->Queue();
}

}  // namespace

struct CipherData {
  Napi::FunctionReference ctor;
};

void InitCipherContext(Napi::Env env) {
  auto* data = new CipherData();
  data->ctor = Napi::Persistent(CipherContext::Define(env));
  env.SetInstanceData<CipherData>(data);
}

Napi::Value CreateCipher(const Napi::CallbackInfo& info) {
  auto* data = info.Env().GetInstanceData<CipherData>();
  return data->ctor.New({info[0], info[1], info[2]});
}

}  // namespace sluice
