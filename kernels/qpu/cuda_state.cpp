#include "kernels/qpu/cuda_state.h"

#include <new>
#include <vector>

#include "kernels/qpu/memory.h"

namespace plinth::qpu {

static_assert(StateVector::kChunk == PLINTH_QPU_CHUNK,
              "the CPU and the GPU add probabilities in the same chunks");
static_assert(sizeof(Complex) == 16, "amplitudes are copied to and from the device as two doubles");

uint64_t CudaStateBytes(uint32_t qubits) {
  if (qubits >= 59) return UINT64_MAX;
  const uint64_t size = uint64_t{1} << qubits;
  const uint64_t chunks = (size / 2 + PLINTH_QPU_CHUNK - 1) / PLINTH_QPU_CHUNK;
  const uint64_t window = size < (uint64_t{1} << 22) ? size : uint64_t{1} << 22;
  return StateBytes(qubits) + chunks * 8 + window * 8;
}

namespace {

class CudaState final : public StateBackend {
 public:
  CudaState(const plinth_gpu_module_v1* table, int index, uint32_t qubits, void* handle)
      : table_(table), index_(index), qubits_(qubits), handle_(handle) {}
  ~CudaState() override {
    table_->qpu_destroy(handle_);
    if (prefix_ != nullptr) table_->qpu_destroy(prefix_);
  }
  CudaState(const CudaState&) = delete;
  CudaState& operator=(const CudaState&) = delete;

  std::string Device() const override { return "cuda:" + std::to_string(index_); }
  uint32_t qubits() const override { return qubits_; }

  void SetZeroState() override {
    Call([&](char* err) { return table_->qpu_set_zero(handle_, err); });
  }
  void ApplyMatrix(const Matrix2& m, uint32_t target, uint64_t controls = 0) override {
    double flat[8];
    for (int k = 0; k < 4; ++k) {
      flat[2 * k] = m[k].real();
      flat[2 * k + 1] = m[k].imag();
    }
    Call([&](char* err) { return table_->qpu_apply_matrix(handle_, flat, target, controls, err); });
  }
  void ApplySwap(uint32_t a, uint32_t b, uint64_t controls = 0) override {
    Call([&](char* err) { return table_->qpu_apply_swap(handle_, a, b, controls, err); });
  }
  double ProbabilityOfOne(uint32_t qubit) override {
    double p = 0;
    Call([&](char* err) { return table_->qpu_probability_of_one(handle_, qubit, &p, err); });
    return p;
  }
  void Collapse(uint32_t qubit, bool one, double probability) override {
    Call([&](char* err) { return table_->qpu_collapse(handle_, qubit, one ? 1 : 0, probability, err); });
  }
  bool PrefixFits(uint64_t max_memory) override {
    const uint64_t bytes = StateBytes(qubits_);
    if (max_memory != 0 && (bytes > max_memory / 2)) return false;
    plinth_gpu_device dev{};
    char err[PLINTH_GPU_ERROR_LEN] = "";
    if (table_->device_info(index_, &dev, err) != PLINTH_GPU_OK) return false;
    return dev.free_bytes / 10 * 9 >= bytes;  // a tenth kept free for the runtime
  }
  void SavePrefix() override {
    if (failed()) return;
    if (prefix_ == nullptr) {
      Call([&](char* err) { return table_->qpu_create(index_, qubits_, &prefix_, err); });
      if (failed()) return;
    }
    Call([&](char* err) { return table_->qpu_copy(prefix_, handle_, err); });
  }
  void RestorePrefix() override {
    Call([&](char* err) { return table_->qpu_copy(handle_, prefix_, err); });
  }
  void SampleFinalState(const Circuit& circuit, uint64_t shots, std::mt19937_64& rng,
                        std::map<std::string, uint64_t>* counts) override {
    if (failed()) return;
    std::vector<double> probabilities;
    try {
      probabilities.resize(size_t{1} << qubits_);
    } catch (const std::bad_alloc&) {
      Fail("no host memory for the " + FormatBytes(StateBytes(qubits_) / 2) +
           " of probabilities to sample from");
      return;
    }
    Call([&](char* err) { return table_->qpu_probabilities(handle_, probabilities.data(), err); });
    if (!failed()) SampleProbabilities(circuit, probabilities, shots, rng, counts);
  }
  std::vector<Complex> Amplitudes() override {
    std::vector<Complex> out(size_t{1} << qubits_);
    Call([&](char* err) { return table_->qpu_read(handle_, out.data(), err); });
    return out;
  }

 private:
  // Runs a table call unless an earlier one failed; records its error.
  template <typename Fn>
  void Call(Fn&& fn) {
    if (failed()) return;
    char err[PLINTH_GPU_ERROR_LEN] = "";
    if (fn(err) != PLINTH_GPU_OK) Fail(err[0] != '\0' ? err : "CUDA call failed");
  }

  const plinth_gpu_module_v1* table_;
  int index_;
  uint32_t qubits_;
  void* handle_;
  void* prefix_ = nullptr;
};

}  // namespace

std::unique_ptr<StateBackend> OpenCudaState(const plinth_gpu_module_v1* table, int index, uint32_t qubits,
                                            std::string* error) {
  if (table == nullptr) return *error = "the CUDA module is not loaded", nullptr;
  void* handle = nullptr;
  char err[PLINTH_GPU_ERROR_LEN] = "";
  if (table->qpu_create(index, qubits, &handle, err) != PLINTH_GPU_OK) return *error = err, nullptr;
  return std::make_unique<CudaState>(table, index, qubits, handle);
}

}  // namespace plinth::qpu
