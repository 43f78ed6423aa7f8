// Internal: the LLVM side of the rule JIT (jit.h). Only compiler/rules/*.cpp
// include this header; nothing outside the folder sees LLVM types.
#pragma once

#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "compiler/rules/ir.h"
#include "compiler/rules/jit.h"

#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

namespace plinth::rules {

// One LLJIT with two JITDylibs: "plinth_rules" (generated code; links only
// against itself and the host dylib) and "plinth_rules_host" (the allow-list
// of host.h as absolute symbols). Modules are compiled on the thread that
// looks them up, each with the CodeGenOpt level its kCodeGenLevelFlag names
// and a target machine of its own. No IR optimisation pipeline runs: the
// code generator emits vector code itself and folds as it builds.
// Thread-safe.
class JitEngine::Impl {
 public:
  static llvm::Expected<std::unique_ptr<Impl>> Create();

  // A tracker for one program's modules; removing it unloads them.
  llvm::orc::ResourceTrackerSP NewTracker();
  llvm::Error Add(const llvm::orc::ResourceTrackerSP& tracker, llvm::orc::ThreadSafeModule module);
  // The addresses of generated functions, by name. Compiles the modules that
  // define them.
  llvm::Expected<std::vector<uint64_t>> Lookup(const std::vector<std::string>& names);

  const llvm::DataLayout& data_layout() const { return jit_->getDataLayout(); }
  const llvm::Triple& triple() const { return jit_->getTargetTriple(); }
  uint64_t NextModuleNumber() { return next_module_++; }

 private:
  std::unique_ptr<llvm::orc::LLJIT> jit_;
  llvm::orc::JITDylib* rules_ = nullptr;
  std::atomic<uint64_t> next_module_{0};
};

// Builds the modules for `program` (codegen.cpp). Function names start with
// `prefix`. Columnar: `<prefix>_group<g>(const BatchView*, uint8_t* out,
// const HostContext*, uint64_t begin, uint64_t end, uint64_t stride)` for
// each group of ColumnarGroups(); rules that did not type-check are in no
// group. Snapshot: `<prefix>_chunk<k>(const double* snapshot, uint8_t* out,
// const HostContext*)` evaluating rules [16k, 16k+16); invalid rules get
// Verdict::Error stored.
//
// One function per group rather than per rule: one pass over the rows reads
// shared columns once, and equal subexpressions of different rules are
// emitted once. Snapshot chunks are small because instruction selection and
// register allocation of scalar code cost more than linear time in the size
// of a function (10k conditions: 256 per function 30 s, 16 per function
// 10 s, in one session under load).
inline constexpr size_t kSnapshotChunk = 16;
inline constexpr size_t kColumnarGroup = 64;
// Rows per iteration of a vector group.
inline constexpr unsigned kLanes = 4;
struct ColumnarGroup {
  std::vector<size_t> rules;
  // Rules without helper calls, evaluated kLanes rows at a time: the
  // function must be called with a multiple of kLanes rows. Otherwise one
  // row at a time.
  bool vector = false;
};
std::vector<ColumnarGroup> ColumnarGroups(const Program& program);
// String helpers whose operands are one varying string and a constant (a
// literal string, a regex pattern, or nothing for length()) are not called
// per evaluation: their result for every string of the pool is computed
// once into a table (JitProgram keeps it up to date as the pool grows), and
// the generated code loads table[id]. Results are the helpers' own (host.h),
// so both back ends still agree.
struct StringTable {
  NodeKind kind = NodeKind::StrLength;  // StartsWith, EndsWith, StrContains, StrLength or RegexCount
  uint32_t constant = 0;                // the constant string's id, or the pattern index
  bool constant_first = false;          // the constant is the first operand
  bool operator<(const StringTable& o) const {
    return std::tie(kind, constant, constant_first) < std::tie(o.kind, o.constant, o.constant_first);
  }
};
struct StringTablePlan {
  std::vector<StringTable> tables;
  std::vector<uint32_t> by_node;  // the table a node reads, or UINT32_MAX
};
StringTablePlan PlanStringTables(const Program& program);
// The entry of `table` for string `id`: the helper's result (-1 for a regex
// that gave up).
double StringTableEntry(const StringTable& table, const HostContext& host, uint32_t id);

// By node: true when the node or an operand calls a host helper (a string
// function not covered by a table) or loops over list elements. Scalar code
// evaluates such operands of && || ?: only when needed.
std::vector<bool> ExpensiveNodes(const Program& program, const StringTablePlan& tables);
// By node: true when the node or an operand calls a host helper; such rules
// are compiled one row at a time, every other rule kLanes rows at a time.
std::vector<bool> HelperNodes(const Program& program, const StringTablePlan& tables);
// A program compiles to kModuleParts modules, each in its own context;
// function f (group or chunk number f) is in part f % kModuleParts. Parts
// without functions are not added. One part: two parts compiled on two ORC
// compile threads (LLJITBuilder::setNumCompileThreads(2)) saved little on
// the 2-core development machine, and once reported "Resource tracker ...
// became defunct" while programs were being unloaded, so that is off until
// it is understood.
inline constexpr unsigned kModuleParts = 1;
std::unique_ptr<llvm::Module> GenerateModule(const Program& program, unsigned part, llvm::LLVMContext& context,
                                             const std::string& prefix, const llvm::DataLayout& layout,
                                             const llvm::Triple& triple);
// The module flag that carries the CodeGenOpt level to the JIT's compiler.
// Columnar modules use CodeGenOpt::None (FastISel where it applies, the fast
// register allocator): their vector code is already what it should be, and
// the full selector and allocator cost 2-3x the compile time. Snapshot
// modules (scalar code, many values live at once) use CodeGenOpt::Default:
// their code is 2.5x slower at None.
inline constexpr const char* kCodeGenLevelFlag = "plinth.codegen_level";
inline constexpr uint32_t kColumnarCodeGenLevel = 0;
inline constexpr uint32_t kSnapshotCodeGenLevel = 2;

}  // namespace plinth::rules
