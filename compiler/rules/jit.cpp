#include "compiler/rules/jit.h"

#include <chrono>
#include <mutex>

#include "compiler/rules/orc_jit.h"

#include <llvm/IR/Verifier.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>

namespace plinth::rules {

namespace {

std::string ErrorText(llvm::Error e) { return llvm::toString(std::move(e)); }

double MsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void InitializeLlvmOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
  });
}

}  // namespace

// ------------------------------------------------------------------ engine

llvm::Expected<std::unique_ptr<JitEngine::Impl>> JitEngine::Impl::Create() {
  InitializeLlvmOnce();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return jtmb.takeError();
  jtmb->setCodeGenOptLevel(llvm::CodeGenOpt::Default);
  auto tm = jtmb->createTargetMachine();
  if (!tm) return tm.takeError();
  auto jit = llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(*jtmb).create();
  if (!jit) return jit.takeError();

  auto impl = std::make_unique<Impl>();
  impl->jit_ = std::move(*jit);
  impl->tm_ = std::move(*tm);
  llvm::orc::ExecutionSession& es = impl->jit_->getExecutionSession();
  // Bare dylibs: no generator, so nothing from the process resolves unless
  // it is in the allow-list below.
  llvm::orc::JITDylib& host = es.createBareJITDylib("plinth_rules_host");
  llvm::orc::SymbolMap symbols;
  for (const HostSymbol& s : HostSymbols()) {
    symbols[impl->jit_->mangleAndIntern(s.name)] =
        llvm::JITEvaluatedSymbol(llvm::pointerToJITTargetAddress(s.address), llvm::JITSymbolFlags::Exported);
  }
  if (llvm::Error e = host.define(llvm::orc::absoluteSymbols(std::move(symbols)))) return e;
  llvm::orc::JITDylib& rules = es.createBareJITDylib("plinth_rules");
  rules.addToLinkOrder(host, llvm::orc::JITDylibLookupFlags::MatchExportedSymbolsOnly);
  impl->rules_ = &rules;
  return impl;
}

llvm::Expected<llvm::orc::ResourceTrackerSP> JitEngine::Impl::Add(llvm::orc::ThreadSafeModule module) {
  llvm::orc::ResourceTrackerSP tracker = rules_->createResourceTracker();
  if (llvm::Error e = jit_->addIRModule(tracker, std::move(module))) return e;
  return tracker;
}

llvm::Expected<uint64_t> JitEngine::Impl::Lookup(llvm::StringRef name) {
  auto sym = jit_->lookup(*rules_, name);
  if (!sym) return sym.takeError();
  return sym->getAddress();
}

JitEngine::JitEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JitEngine::~JitEngine() = default;

std::shared_ptr<JitEngine> JitEngine::Create(std::string* error) {
  auto impl = Impl::Create();
  if (!impl) {
    if (error) *error = "cannot start the rule JIT: " + ErrorText(impl.takeError());
    else llvm::consumeError(impl.takeError());
    return nullptr;
  }
  return std::shared_ptr<JitEngine>(new JitEngine(std::move(*impl)));
}

// ------------------------------------------------------------------ programs

using GroupFn = void (*)(const BatchView*, uint8_t*, const HostContext*, uint64_t, uint64_t, uint64_t);
using ChunkFn = void (*)(const double*, uint8_t*, const HostContext*);

struct JitProgram::Impl {
  std::shared_ptr<JitEngine> engine;
  llvm::orc::ResourceTrackerSP tracker;
  FieldMode mode = FieldMode::Columnar;
  std::vector<GroupFn> groups;
  std::vector<size_t> invalid;  // rules that did not type-check: no code, Verdict::Error
  std::vector<ChunkFn> chunks;
};

JitProgram::JitProgram(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

JitProgram::~JitProgram() {
  if (impl_ && impl_->tracker) {
    // Unloading can only fail if the session is already broken; there is no
    // one to report to from a destructor, and the memory is then leaked.
    llvm::consumeError(impl_->tracker->remove());
  }
}

std::unique_ptr<JitProgram> JitProgram::Compile(std::shared_ptr<JitEngine> engine, const Program& program,
                                                std::string* error, JitStats* stats) {
  auto fail = [&](std::string what, llvm::Error e) -> std::unique_ptr<JitProgram> {
    if (error) *error = what + ": " + ErrorText(std::move(e));
    else llvm::consumeError(std::move(e));
    return nullptr;
  };
  JitEngine::Impl& jit = engine->impl();
  JitStats local;
  auto t0 = std::chrono::steady_clock::now();
  std::string prefix = "plinth_rules" + std::to_string(jit.NextModuleNumber());
  auto context = std::make_unique<llvm::LLVMContext>();
  std::unique_ptr<llvm::Module> module = GenerateModule(program, *context, prefix, jit.data_layout(), jit.triple());
  std::string verify;
  llvm::raw_string_ostream vs(verify);
  if (llvm::verifyModule(*module, &vs)) {
    // A code generator bug, not a user error: say so plainly.
    if (error) *error = "internal error: the generated rule module is invalid: " + vs.str();
    return nullptr;
  }
  local.ir_ms = MsSince(t0);
  t0 = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(jit.optimize_lock());
    OptimizeModule(*module, jit.target_machine());
  }
  local.optimize_ms = MsSince(t0);

  t0 = std::chrono::steady_clock::now();

  auto impl = std::make_unique<Impl>();
  impl->engine = engine;
  impl->mode = program.mode;
  auto tracker = jit.Add(llvm::orc::ThreadSafeModule(std::move(module), std::move(context)));
  if (!tracker) return fail("cannot add the rule module to the JIT", tracker.takeError());
  impl->tracker = *tracker;
  // From here on the destructor unloads whatever was added.
  std::unique_ptr<JitProgram> out(new JitProgram(std::move(impl)));
  Impl& p = *out->impl_;
  if (program.mode == FieldMode::Columnar) {
    for (size_t r = 0; r < program.rules.size(); ++r) {
      if (!program.rules[r].root.valid()) p.invalid.push_back(r);
    }
    size_t groups = ColumnarGroups(program).size();
    for (size_t g = 0; g < groups; ++g) {
      auto addr = jit.Lookup(prefix + "_group" + std::to_string(g));
      if (!addr) return fail("cannot compile the rules", addr.takeError());
      p.groups.push_back(reinterpret_cast<GroupFn>(static_cast<uintptr_t>(*addr)));
      ++local.functions;
    }
  } else {
    for (size_t k = 0; k * kSnapshotChunk < program.rules.size(); ++k) {
      auto addr = jit.Lookup(prefix + "_chunk" + std::to_string(k));
      if (!addr) return fail("cannot compile the conditions", addr.takeError());
      p.chunks.push_back(reinterpret_cast<ChunkFn>(static_cast<uintptr_t>(*addr)));
      ++local.functions;
    }
  }
  local.machine_code_ms = MsSince(t0);
  if (stats) *stats = local;
  return out;
}

void JitProgram::RunAll(const BatchView& batch, const HostContext& host, Verdict* out, uint64_t begin, uint64_t end,
                        uint64_t stride) const {
  for (GroupFn fn : impl_->groups) fn(&batch, reinterpret_cast<uint8_t*>(out), &host, begin, end, stride);
  for (size_t r : impl_->invalid) std::fill(out + r * stride, out + r * stride + (end - begin), Verdict::Error);
}

void JitProgram::RunSnapshot(const double* snapshot, const HostContext& host, Verdict* out) const {
  for (ChunkFn fn : impl_->chunks) fn(snapshot, reinterpret_cast<uint8_t*>(out), &host);
}

}  // namespace plinth::rules
