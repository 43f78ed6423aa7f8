// The rule JIT: compiles a Program (ir.h) to native code with LLVM 14 ORC.
//
// JitEngine owns one LLJIT. Generated code lives in a JITDylib with no
// process-symbol generator: the only external symbols it can resolve are the
// host helpers of host.h (an explicit allow-list, registered as absolute
// symbols in a separate JITDylib). Each JitProgram's LLVM modules are added
// under one ResourceTracker, so destroying the
// JitProgram unloads its code; engines are reused across programs.
//
// Code shape (docs/rules.md, "Code generation"): for columnar programs
// functions that each evaluate a group of up to 64 rules in one loop over a
// range of records, 4 records per iteration as LLVM vectors where the rules
// call no host helper; for snapshot programs (conditions) functions that
// evaluate up to 16 rules each over one snapshot. No IR optimisation pipeline
// runs. No LLVM type appears in this header.
//
// Thread safety: JitEngine is thread-safe (compiles may run concurrently).
// A JitProgram is immutable after Compile; Run/RunSnapshot may be called
// from many threads at once. A JitProgram keeps its engine alive.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/rules/host.h"
#include "compiler/rules/ir.h"

namespace plinth::rules {

class JitEngine {
 public:
  // Returns null and sets `error` when LLVM cannot target this machine.
  static std::shared_ptr<JitEngine> Create(std::string* error);
  ~JitEngine();
  JitEngine(const JitEngine&) = delete;
  JitEngine& operator=(const JitEngine&) = delete;

  class Impl;  // compiler/rules/orc_jit.h
  Impl& impl() { return *impl_; }

 private:
  explicit JitEngine(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct JitStats {
  double ir_ms = 0;            // building (and verifying) LLVM IR from the rule IR
  double machine_code_ms = 0;  // instruction selection, emission and linking (no IR passes run)
  size_t functions = 0;
  size_t ir_instructions = 0;  // in the generated modules
};

class JitProgram {
 public:
  // `program` is only read during Compile. Returns null and sets `error` on
  // an LLVM failure (an environment problem, never a user mistake).
  static std::unique_ptr<JitProgram> Compile(std::shared_ptr<JitEngine> engine, const Program& program,
                                             std::string* error, JitStats* stats = nullptr);
  ~JitProgram();  // removes the code from the engine
  JitProgram(const JitProgram&) = delete;
  JitProgram& operator=(const JitProgram&) = delete;

  // Same contracts as Interpreter::RunAll / RunSnapshot.
  void RunAll(const BatchView& batch, const HostContext& host, Verdict* out, uint64_t begin, uint64_t end,
              uint64_t stride) const;
  void RunSnapshot(const double* snapshot, const HostContext& host, Verdict* out) const;

  struct Impl;

 private:
  explicit JitProgram(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace plinth::rules
