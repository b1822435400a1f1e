#include "thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice {

namespace {

// Tasks beyond this many run on the threads already there; more would only oversubscribe.
size_t MaxThreads() {
  static const size_t max = std::clamp<size_t>(2 * std::thread::hardware_concurrency(), 4, 64);
  return max;
}

struct Batch {
  const std::function<void(size_t)>* fn = nullptr;
  size_t n = 0;
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  size_t finished = 0;
  std::exception_ptr error;

  // Claims and runs one task; false when none are left to claim.
  bool RunOne() {
    size_t i = next.fetch_add(1, std::memory_order_relaxed);
    if (i >= n) return false;
    std::exception_ptr err;
    try {
      (*fn)(i);
    } catch (...) {
      err = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mu);
    if (err && !error) error = err;
    if (++finished == n) cv.notify_all();
    return true;
  }

  bool Exhausted() const { return next.load(std::memory_order_relaxed) >= n; }
};

class Pool {
 public:
  void Submit(const std::shared_ptr<Batch>& batch, size_t helpers) {
    std::lock_guard<std::mutex> lock(mu_);
    while (threads_ < std::min(helpers, MaxThreads())) {
      std::thread(&Pool::Loop, this).detach();
      ++threads_;
    }
    queue_.push_back(batch);
    if (helpers == 1) {
      cv_.notify_one();
    } else {
      cv_.notify_all();
    }
  }

  void Remove(const std::shared_ptr<Batch>& batch) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(queue_.begin(), queue_.end(), batch);
    if (it != queue_.end()) queue_.erase(it);
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [this] { return !queue_.empty(); });
      std::shared_ptr<Batch> batch = queue_.front();
      if (batch->Exhausted()) {
        queue_.pop_front();
        continue;
      }
      lock.unlock();
      batch->RunOne();
      batch.reset();
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Batch>> queue_;
  size_t threads_ = 0;
};

// Never destroyed: its threads are detached and outlive static destruction at exit.
Pool& GlobalPool() {
  static Pool* pool = new Pool();
  return *pool;
}

}  // namespace

void ParallelFor(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  auto batch = std::make_shared<Batch>();
  batch->fn = &fn;
  batch->n = n;
  Pool& pool = GlobalPool();
  pool.Submit(batch, n - 1);
  while (batch->RunOne()) {
  }
  pool.Remove(batch);
  std::unique_lock<std::mutex> lock(batch->mu);
  batch->cv.wait(lock, [&] { return batch->finished == batch->n; });
  if (batch->error) std::rethrow_exception(batch->error);
}

}  // namespace sluice
