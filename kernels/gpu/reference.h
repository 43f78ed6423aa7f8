// The CPU reference kernels (docs/gpu.md, "CPU references"): the same
// algorithms as the CUDA module, on host memory, so that every decision the
// probe makes is tested without a GPU, and a backend that runs the whole probe
// on the host (`plinth gpu probe --device=cpu`).
//
// Tile shape and memory-test steps come from module_abi.h, shared with the
// CUDA kernels: the reference GEMM accumulates each element in the same
// order with the same fused multiply-add, so a correct GPU gives the same bits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "kernels/gpu/gpu.h"

namespace plinth::gpu {

// Deterministic test matrices: values in [-1, 1], multiples of 2^-12 (exact in FP32).
template <typename T>
void FillMatrix(T* m, size_t count, uint64_t seed);

// C = A B, row-major n x n, by the CUDA kernel's tiling (64 x 64 blocks of
// 16 x 16 threads, 4 x 4 per thread, k-tiles of 16), any n.
template <typename T>
void TiledGemm(const T* a, const T* b, T* c, int n);

// The textbook triple loop (a * b + acc, no fused multiply-add): the oracle
// the tiled reference is checked against within GemmErrorBound.
template <typename T>
void NaiveGemm(const T* a, const T* b, T* c, int n);

// Elements of `got` farther from `want` than 2 gamma_n sum_k |a_ik||b_kj|,
// gamma_n = n u / (1 - n u) with u the unit roundoff: the worst-case error of
// two n-term dot products computed in any order. A correct kernel stays far
// inside it (the tiled kernel, exactly at 0); an indexing or hardware error
// lands far outside.
template <typename T>
uint64_t CountBeyondBound(const T* got, const T* want, const T* a, const T* b, int n);

// Elements whose bits differ.
template <typename T>
uint64_t CountBitMismatches(const T* x, const T* y, size_t count);

// Called after every step that writes (module_abi.h steps), with the step's
// index: the fault-injection hook ("fake fault" mode), which may flip bits
// between a write and the verify that follows.
using FaultHook = std::function<void(uint32_t* words, uint64_t count, int step)>;

// Walking ones, moving inversions, address in address over `words`, as the
// GPU runs them; errors and the first kMaxBadAddresses bad words reported.
MemoryTestResult PatternTest(uint32_t* words, uint64_t count, bool full, const FaultHook& after_write);

// The test a step belongs to: "walking_ones", "moving_inversions", "address_in_address".
const char* MemoryTestName(int test);

// A hook that flips bit 0 of word `index` after every write.
FaultHook FlipBitHook(uint64_t index);

// The host as a device, through the reference kernels. Its bandwidth peak is
// the best rate memcpy, copy or triad reached over the same buffers in the
// same run (a host reports no memory clock); it has no host/device transfers
// and no cuBLAS. Sized to exercise the gate in a second, not to judge a host.
std::unique_ptr<Backend> MakeCpuBackend();

}  // namespace plinth::gpu
