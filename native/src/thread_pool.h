// A small process-wide pool of persistent threads, so 8 MiB chunks do not pay thread start-up.
#pragma once

#include <cstddef>
#include <functional>

namespace sluice {

// Runs fn(0..n-1), at most n at a time, on pool threads and on the calling thread, and returns
// when all have finished. The caller takes tasks too, so progress never depends on a free pool
// thread. The first exception thrown by any task is rethrown here after all tasks have ended.
void ParallelFor(size_t n, const std::function<void(size_t)>& fn);

}  // namespace sluice
