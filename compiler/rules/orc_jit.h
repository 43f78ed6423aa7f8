// Internal: the LLVM side of the rule JIT (jit.h). Only compiler/rules/*.cpp
// include this header; nothing outside the folder sees LLVM types.
#pragma once

#include <memory>
#include <string>

#include "compiler/rules/ir.h"
#include "compiler/rules/jit.h"

#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

namespace plinth::rules {

// One LLJIT with two JITDylibs: "plinth_rules" (generated code; links only
// against itself and the host dylib) and "plinth_rules_host" (the allow-list
// of host.h as absolute symbols). Thread-safe.
class JitEngine::Impl {
 public:
  static llvm::Expected<std::unique_ptr<Impl>> Create();

  // Adds a module under a new ResourceTracker; removing the tracker unloads it.
  llvm::Expected<llvm::orc::ResourceTrackerSP> Add(llvm::orc::ThreadSafeModule module);
  // The address of a generated function; the first lookup in a module
  // compiles the whole module.
  llvm::Expected<uint64_t> Lookup(llvm::StringRef name);

  const llvm::DataLayout& data_layout() const { return jit_->getDataLayout(); }
  const llvm::Triple& triple() const { return jit_->getTargetTriple(); }
  // A target machine for the host, used for the optimisation pipeline; call
  // under optimize_lock().
  llvm::TargetMachine& target_machine() { return *tm_; }
  std::mutex& optimize_lock() { return tm_mu_; }
  uint64_t NextModuleNumber() { return next_module_++; }

 private:
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  llvm::orc::JITDylib* rules_ = nullptr;
  std::unique_ptr<llvm::TargetMachine> tm_;
  std::mutex tm_mu_;
  std::atomic<uint64_t> next_module_{0};
};

// Builds the module for `program` (codegen.cpp). Function names start with
// `prefix`. Columnar: `<prefix>_group<g>(const BatchView*, uint8_t* out,
// const HostContext*, uint64_t begin, uint64_t end, uint64_t stride)` for
// each group of ColumnarGroups(); rules that did not type-check are in no
// group. Snapshot: `<prefix>_chunk<k>(const double* snapshot, uint8_t* out,
// const HostContext*)` evaluating rules [256k, 256k+256); invalid rules get
// Verdict::Error stored.
//
// One function per group rather than per rule: LLVM's cost is mostly per
// function, and one pass over the rows reads shared columns once.
inline constexpr size_t kSnapshotChunk = 256;
inline constexpr size_t kColumnarGroup = 64;
std::vector<std::vector<size_t>> ColumnarGroups(const Program& program);
// By node: true when the node or an operand calls a host helper or loops over
// list elements.
std::vector<bool> ExpensiveNodes(const Program& program);
std::unique_ptr<llvm::Module> GenerateModule(const Program& program, llvm::LLVMContext& context,
                                             const std::string& prefix, const llvm::DataLayout& layout,
                                             const llvm::Triple& triple);
// Runs the O2 pipeline on `module` for `tm`.
void OptimizeModule(llvm::Module& module, llvm::TargetMachine& tm);

}  // namespace plinth::rules
