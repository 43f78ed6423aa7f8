// ParallelFor: runs fn(i) for every i in [0, n) on up to `threads` threads
// (the calling thread included), handing out indices one at a time, so
// uneven work balances. For independent, CPU- or I/O-bound items that need
// no ordering (refresh reads, per-instance diffs, state decoding); the
// dependency-ordered executor (executor.h) is for changes to the world.
// fn must be safe to call concurrently for different i.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <thread>
#include <vector>

namespace plinth::runtime {

template <typename Fn>
void ParallelFor(size_t n, size_t threads, Fn&& fn) {
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i);
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < std::max<size_t>(1, threads) && t < n; ++t) pool.emplace_back(work);
  work();
  for (std::thread& th : pool) th.join();
}

// Threads worth using for n items of light work: one below `min_items`, else
// one per core up to 8.
inline size_t ThreadsFor(size_t n, size_t min_items) {
  if (n < min_items) return 1;
  return std::max<size_t>(1, std::min<size_t>(8, std::thread::hardware_concurrency()));
}

}  // namespace plinth::runtime
