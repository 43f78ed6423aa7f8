/* The interface between plinth and its CUDA module, libplinth_gpu_cuda.so.
 *
 * plinth never links the CUDA runtime, the driver or cuBLAS: it dlopen()s the
 * module (kernels/gpu/cuda_backend.cpp) and calls it through the versioned
 * table of function pointers below, which the module's one exported symbol,
 * plinth_gpu_module(), returns. The module links the CUDA runtime statically;
 * the runtime finds the driver (libcuda.so.1) on first use and reports its
 * absence as an error code, so a machine without a driver gets an answer, not
 * a failed load. cuBLAS is dlopen()ed by the module, and is optional.
 *
 * Plain C (fixed-size types, no C++), compiled by both nvcc and the host
 * compiler. A change to any struct or function here bumps
 * PLINTH_GPU_ABI_VERSION; plinth refuses a module of another version.
 * Also defined here, so that both sides share one definition: the GEMM tile
 * shape (the CPU reference reproduces it, kernels/gpu/reference.h) and the
 * memory-test steps and patterns. Documented in docs/gpu.md. */
#ifndef PLINTH_KERNELS_GPU_MODULE_ABI_H_
#define PLINTH_KERNELS_GPU_MODULE_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __CUDACC__
#define PLINTH_GPU_HD __host__ __device__
#else
#define PLINTH_GPU_HD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* 2: the state-vector simulator's entry points (qpu_*) were added. */
#define PLINTH_GPU_ABI_VERSION 2u
#define PLINTH_GPU_MODULE_SYMBOL "plinth_gpu_module"

/* Status codes of every module function. */
enum {
  PLINTH_GPU_OK = 0,
  PLINTH_GPU_NO_DRIVER = 1, /* no driver, or one too old for the module's runtime */
  PLINTH_GPU_NO_DEVICE = 2, /* a driver, but no CUDA device */
  PLINTH_GPU_ERROR = 3      /* anything else: the message says what */
};

#define PLINTH_GPU_ERROR_LEN 256
#define PLINTH_GPU_MAX_BAD 64 /* bad-address events a memory test records */

/* GEMM tiling, shared by the CUDA kernel and the CPU reference: a block of
 * 16x16 threads computes a 64x64 tile of C, each thread a 4x4 micro-tile, over
 * k-tiles of 16. Every element of C is accumulated with one fused multiply-add
 * per k, in increasing k, so the reference gives the same bits. */
#define PLINTH_GEMM_BLOCK 64
#define PLINTH_GEMM_BLOCK_K 16
#define PLINTH_GEMM_THREAD 4

typedef struct {
  int32_t ordinal;
  char name[256];
  char pci_bus_id[32]; /* "0000:17:00.0" */
  int32_t cc_major, cc_minor;
  int32_t multiprocessors;
  int32_t ecc_enabled;
  int32_t memory_clock_khz; /* 0 when the attribute is not reported */
  int32_t bus_width_bits;
  int32_t driver_version, runtime_version; /* 1000 * major + 10 * minor */
  uint64_t total_bytes, free_bytes, l2_bytes;
} plinth_gpu_device;

typedef struct {
  uint64_t buffer_bytes; /* each of the three buffers */
  int32_t runs;
  double copy_seconds;  /* best run: reads buffer_bytes, writes buffer_bytes */
  double triad_seconds; /* best run: reads 2 x buffer_bytes, writes buffer_bytes */
} plinth_gpu_bandwidth;

typedef struct {
  int32_t fp64;  /* 0: FP32, 1: FP64 */
  int32_t n;     /* square n x n; a multiple of PLINTH_GEMM_BLOCK */
  const void* a; /* host, row-major n x n of float or double */
  const void* b;
  void* first_result;   /* host, n x n; the first result is copied here; may be NULL */
  double seconds;       /* repeat for at least this long ... */
  uint64_t min_repeats; /* ... and at least this many times (>= 1) */
  int32_t inject_fault; /* fake fault: flip one bit of the second result (forces 2 repeats) */
  int32_t with_cublas;  /* also time the same GEMM through cuBLAS, when it loads */
} plinth_gpu_gemm_request;

typedef struct {
  uint64_t repeats;
  uint64_t mismatched_elements; /* over every repeat: elements whose bits differ from the first result */
  double seconds;               /* of the repeats, kernels only */
  double cublas_seconds;        /* per GEMM; < 0 when cuBLAS was not run */
  char cublas_note[PLINTH_GPU_ERROR_LEN]; /* why not, or which library */
} plinth_gpu_gemm_result;

typedef struct {
  uint64_t offset_bytes;
  uint32_t expected, actual;
  uint32_t step; /* index into the steps of plinth_gpu_memtest_steps */
} plinth_gpu_bad_word;

typedef struct {
  uint64_t bytes_tested;
  uint64_t errors;    /* every mismatching word read, over every step */
  uint32_t bad_count; /* entries in bad (at most PLINTH_GPU_MAX_BAD) */
  plinth_gpu_bad_word bad[PLINTH_GPU_MAX_BAD];
} plinth_gpu_memtest_result;

typedef struct {
  uint64_t bytes;
  int32_t runs;
  double h2d_seconds, d2h_seconds; /* best runs, pinned host memory */
} plinth_gpu_transfer;

typedef struct {
  uint32_t abi_version; /* PLINTH_GPU_ABI_VERSION */
  uint32_t struct_size; /* sizeof(plinth_gpu_module_v1) */
  /* Each returns a PLINTH_GPU_* status and, unless OK, a message in err. */
  int (*device_count)(int32_t* count, char* err);
  int (*device_info)(int32_t ordinal, plinth_gpu_device* out, char* err);
  int (*bandwidth)(int32_t ordinal, uint64_t buffer_bytes, int32_t runs, plinth_gpu_bandwidth* out,
                   char* err);
  int (*gemm)(int32_t ordinal, const plinth_gpu_gemm_request* request, plinth_gpu_gemm_result* out,
              char* err);
  /* words: 32-bit words to test (from free memory); fault_word: a word whose
   * bit 0 is flipped after every writing step (fake fault), or UINT64_MAX. */
  int (*memory_test)(int32_t ordinal, uint64_t words, int32_t full, uint64_t fault_word,
                     plinth_gpu_memtest_result* out, char* err);
  int (*transfer)(int32_t ordinal, uint64_t bytes, int32_t runs, plinth_gpu_transfer* out, char* err);

  /* The state-vector simulator (kernels/qpu/cuda_state.cpp, docs/qpu.md). A
   * state is 2^qubits amplitudes of complex double (16 bytes each: real, then
   * imaginary) in device memory, bit q of an index being qubit q, owned by
   * an opaque handle from qpu_create and freed by qpu_destroy. Each call queues
   * its kernels in order on the default stream and returns; a fault inside a
   * kernel is therefore reported by a later call (the next one that waits:
   * qpu_probability_of_one, qpu_probabilities, qpu_read). The
   * arithmetic is the CPU simulator's, operation for operation, with no fused
   * multiply-add (kernels/qpu/simulator.cpp), and reductions add chunks of
   * PLINTH_QPU_CHUNK in the CPU's order. */
  /* |0...0> on `qubits` qubits of device `ordinal`. */
  int (*qpu_create)(int32_t ordinal, uint32_t qubits, void** state, char* err);
  void (*qpu_destroy)(void* state);
  int (*qpu_set_zero)(void* state, char* err);
  /* dst = src; both of the same qubit count and device. */
  int (*qpu_copy)(void* dst, const void* src, char* err);
  /* matrix: row-major 2x2 complex, 8 doubles (re m00, im m00, re m01, ...);
   * applied to `target` where every qubit of the `controls` mask is 1. */
  int (*qpu_apply_matrix)(void* state, const double* matrix, uint32_t target, uint64_t controls, char* err);
  int (*qpu_apply_swap)(void* state, uint32_t a, uint32_t b, uint64_t controls, char* err);
  /* The probability that measuring `qubit` gives 1. */
  int (*qpu_probability_of_one)(void* state, uint32_t qubit, double* out, char* err);
  /* Projects onto qubit == one, whose probability was `probability`, and renormalises. */
  int (*qpu_collapse)(void* state, uint32_t qubit, int32_t one, double probability, char* err);
  /* |amplitude i|^2 for every i, into host memory of 8 * 2^qubits bytes. */
  int (*qpu_probabilities)(void* state, double* host_out, char* err);
  /* The amplitudes, into host memory of 16 * 2^qubits bytes. */
  int (*qpu_read)(void* state, void* host_out, char* err);
  /* Benchmark: the best of `reps` timings of one single-qubit gate pass (h on
   * `target`) over a `qubits`-qubit state, and of a device-to-device copy of
   * the same bytes into a second buffer. */
  int (*qpu_bench)(int32_t ordinal, uint32_t qubits, uint32_t target, int32_t reps, double* gate_seconds,
                   double* copy_seconds, char* err);
} plinth_gpu_module_v1;

/* Amplitude pairs summed per thread by qpu_probability_of_one, in index
 * order, before the chunk sums are added in chunk order on the host: the
 * CPU simulator's StateVector::kChunk, so both add in the same order. */
#define PLINTH_QPU_CHUNK 16384u

/* The module's one export: its table when it speaks `abi_version`, else NULL. */
typedef const plinth_gpu_module_v1* (*plinth_gpu_module_fn)(uint32_t abi_version);

/* ------------------------------------------------------------ memory test
 * A test is a list of steps over every word; a step writes, verifies, or
 * verifies and then writes (moving inversions). Patterns are functions of the
 * word index, so the GPU and the CPU reference compute the same values. */
enum {
  PLINTH_PATTERN_WALK = 0,    /* 1 << ((index + param) % 32): walking ones */
  PLINTH_PATTERN_CONST = 1,   /* param */
  PLINTH_PATTERN_ADDR = 2,    /* the index itself (low and high halves mixed) */
  PLINTH_PATTERN_ADDR_INV = 3 /* its complement */
};
enum { PLINTH_STEP_WRITE = 0, PLINTH_STEP_VERIFY = 1, PLINTH_STEP_VERIFY_WRITE = 2 };
enum { PLINTH_TEST_WALKING_ONES = 0, PLINTH_TEST_MOVING_INVERSIONS = 1, PLINTH_TEST_ADDRESS = 2 };

typedef struct {
  uint8_t test;   /* PLINTH_TEST_* */
  uint8_t action; /* PLINTH_STEP_* */
  uint8_t expect_kind, write_kind;
  uint32_t expect_param, write_param;
} plinth_gpu_mem_step;

static inline PLINTH_GPU_HD uint32_t plinth_gpu_pattern(uint32_t kind, uint32_t param, uint64_t index) {
  uint32_t addr = (uint32_t)index ^ (uint32_t)(index >> 32);
  switch (kind) {
    case PLINTH_PATTERN_WALK: return 1u << (uint32_t)((index + param) & 31u);
    case PLINTH_PATTERN_CONST: return param;
    case PLINTH_PATTERN_ADDR: return addr;
    default: return ~addr;
  }
}

#define PLINTH_GPU_MAX_STEPS 64

/* Fills `out` (PLINTH_GPU_MAX_STEPS entries) with the steps of the quick
 * (full = 0) or full test; returns how many. Quick: walking ones, moving
 * inversions of 0x00000000 and 0x55555555, address in address. Full adds
 * moving inversions of 0x33333333 and 0x0F0F0F0F. */
static inline int plinth_gpu_memtest_steps(int full, plinth_gpu_mem_step* out) {
  int n = 0;
  uint32_t bit;
  int i;
  const uint32_t patterns[4] = {0x00000000u, 0x55555555u, 0x33333333u, 0x0F0F0F0Fu};
  plinth_gpu_mem_step s;
  s.test = PLINTH_TEST_WALKING_ONES;
  s.action = PLINTH_STEP_WRITE;
  s.expect_kind = s.write_kind = PLINTH_PATTERN_WALK;
  s.expect_param = s.write_param = 0;
  out[n++] = s;
  for (bit = 1; bit < 32; ++bit) {
    s.action = PLINTH_STEP_VERIFY_WRITE;
    s.expect_param = bit - 1;
    s.write_param = bit;
    out[n++] = s;
  }
  s.action = PLINTH_STEP_VERIFY;
  s.expect_param = 31;
  out[n++] = s;
  for (i = 0; i < (full ? 4 : 2); ++i) {
    s.test = PLINTH_TEST_MOVING_INVERSIONS;
    s.expect_kind = s.write_kind = PLINTH_PATTERN_CONST;
    s.action = PLINTH_STEP_WRITE;
    s.expect_param = s.write_param = patterns[i];
    out[n++] = s;
    s.action = PLINTH_STEP_VERIFY_WRITE;
    s.expect_param = patterns[i];
    s.write_param = ~patterns[i];
    out[n++] = s;
    s.expect_param = ~patterns[i];
    s.write_param = patterns[i];
    out[n++] = s;
    s.action = PLINTH_STEP_VERIFY;
    s.expect_param = patterns[i];
    out[n++] = s;
  }
  s.test = PLINTH_TEST_ADDRESS;
  s.action = PLINTH_STEP_WRITE;
  s.expect_kind = s.write_kind = PLINTH_PATTERN_ADDR;
  s.expect_param = s.write_param = 0;
  out[n++] = s;
  s.action = PLINTH_STEP_VERIFY_WRITE;
  s.write_kind = PLINTH_PATTERN_ADDR_INV;
  out[n++] = s;
  s.action = PLINTH_STEP_VERIFY;
  s.expect_kind = PLINTH_PATTERN_ADDR_INV;
  out[n++] = s;
  return n;
}

#ifdef __cplusplus
}
#endif

#endif /* PLINTH_KERNELS_GPU_MODULE_ABI_H_ */
