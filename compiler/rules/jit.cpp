#include "compiler/rules/jit.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>

#include "compiler/rules/orc_jit.h"

#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/IR/Constants.h>
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

// Compiles each module with the CodeGenOpt level of its kCodeGenLevelFlag,
// with a target machine of its own (so programs compiled on several threads
// at once).
class LeveledCompiler : public llvm::orc::IRCompileLayer::IRCompiler {
 public:
  explicit LeveledCompiler(llvm::orc::JITTargetMachineBuilder jtmb)
      : IRCompiler(llvm::orc::irManglingOptionsFromTargetOptions(jtmb.getOptions())), jtmb_(std::move(jtmb)) {}

  llvm::Expected<std::unique_ptr<llvm::MemoryBuffer>> operator()(llvm::Module& m) override {
    llvm::orc::JITTargetMachineBuilder b = jtmb_;
    auto* level = llvm::mdconst::extract_or_null<llvm::ConstantInt>(m.getModuleFlag(kCodeGenLevelFlag));
    switch (level ? level->getZExtValue() : 2) {
      case 0: b.setCodeGenOptLevel(llvm::CodeGenOpt::None); break;
      case 1: b.setCodeGenOptLevel(llvm::CodeGenOpt::Less); break;
      case 3: b.setCodeGenOptLevel(llvm::CodeGenOpt::Aggressive); break;
      default: b.setCodeGenOptLevel(llvm::CodeGenOpt::Default); break;
    }
    auto tm = b.createTargetMachine();
    if (!tm) return tm.takeError();
    return llvm::orc::SimpleCompiler(**tm)(m);
  }

 private:
  llvm::orc::JITTargetMachineBuilder jtmb_;
};
}  // namespace

// ------------------------------------------------------------------ engine

llvm::Expected<std::unique_ptr<JitEngine::Impl>> JitEngine::Impl::Create() {
  InitializeLlvmOnce();
  auto jtmb = llvm::orc::JITTargetMachineBuilder::detectHost();
  if (!jtmb) return jtmb.takeError();
  // No compile threads: modules compile on the thread that looks them up
  // (see kModuleParts for why).
  auto jit = llvm::orc::LLJITBuilder()
                 .setJITTargetMachineBuilder(*jtmb)
                 .setCompileFunctionCreator([](llvm::orc::JITTargetMachineBuilder b)
                                                -> llvm::Expected<std::unique_ptr<llvm::orc::IRCompileLayer::IRCompiler>> {
                   return std::make_unique<LeveledCompiler>(std::move(b));
                 })
                 .create();
  if (!jit) return jit.takeError();

  auto impl = std::make_unique<Impl>();
  impl->jit_ = std::move(*jit);
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

llvm::orc::ResourceTrackerSP JitEngine::Impl::NewTracker() { return rules_->createResourceTracker(); }

llvm::Error JitEngine::Impl::Add(const llvm::orc::ResourceTrackerSP& tracker, llvm::orc::ThreadSafeModule module) {
  return jit_->addIRModule(tracker, std::move(module));
}

llvm::Expected<std::vector<uint64_t>> JitEngine::Impl::Lookup(const std::vector<std::string>& names) {
  llvm::orc::ExecutionSession& es = jit_->getExecutionSession();
  llvm::orc::SymbolLookupSet set;
  std::vector<llvm::orc::SymbolStringPtr> interned;
  for (const std::string& n : names) {
    interned.push_back(jit_->mangleAndIntern(n));
    set.add(interned.back());
  }
  auto found = es.lookup(llvm::orc::makeJITDylibSearchOrder(rules_), std::move(set));
  if (!found) return found.takeError();
  std::vector<uint64_t> out;
  for (const auto& n : interned) out.push_back((*found)[n].getAddress());
  return out;
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
  struct Group {
    GroupFn fn;
    bool vector;
    std::vector<size_t> rules;
  };
  std::vector<Group> groups;
  bool has_vector = false;
  size_t rule_count = 0;
  ColumnLayout layout;
  std::vector<FieldShape> shapes;  // by field id
  std::vector<size_t> invalid;  // rules that did not type-check: no code, Verdict::Error
  std::vector<ChunkFn> chunks;

  // String tables (orc_jit.h), extended when the pool has grown. The pool
  // only grows while no evaluation runs (strings.h), so all evaluations
  // running at one time see one pool size and at most one of them extends
  // the tables, before any of them reads them.
  std::vector<StringTable> table_specs;
  std::mutex tables_mu;
  static constexpr size_t kNotBuilt = SIZE_MAX;
  std::atomic<size_t> computed{kNotBuilt};  // string ids computed (the pool's size then)
  std::vector<std::vector<double>> tables;
  std::vector<const double*> table_ptrs;

  const double* const* Tables(const HostContext& host) {
    if (table_specs.empty()) return nullptr;
    size_t want = host.strings->size();
    size_t have = computed.load(std::memory_order_acquire);
    if (have != kNotBuilt && have >= want) return table_ptrs.data();
    std::lock_guard<std::mutex> lock(tables_mu);
    have = computed.load(std::memory_order_relaxed);
    if (have != kNotBuilt && have >= want) return table_ptrs.data();
    if (have == kNotBuilt) have = 0;
    tables.resize(table_specs.size());
    table_ptrs.resize(table_specs.size());
    for (size_t t = 0; t < table_specs.size(); ++t) {
      // At least one entry: generated code reads entry 0 for values that
      // are not known.
      tables[t].resize(std::max<size_t>(want, 1), 0.0);
      for (size_t id = have; id < want; ++id) {
        tables[t][id] = StringTableEntry(table_specs[t], host, static_cast<uint32_t>(id));
      }
      table_ptrs[t] = tables[t].data();
    }
    computed.store(want, std::memory_order_release);
    return table_ptrs.data();
  }
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
  struct Part {
    std::unique_ptr<llvm::LLVMContext> context;
    std::unique_ptr<llvm::Module> module;
  };
  std::vector<Part> parts;
  for (unsigned part = 0; part < kModuleParts; ++part) {
    Part m;
    m.context = std::make_unique<llvm::LLVMContext>();
    m.module = GenerateModule(program, part, *m.context, prefix, jit.data_layout(), jit.triple());
    if (std::none_of(m.module->begin(), m.module->end(), [](const llvm::Function& f) { return !f.isDeclaration(); })) {
      continue;
    }
    std::string verify;
    llvm::raw_string_ostream vs(verify);
    if (llvm::verifyModule(*m.module, &vs)) {
      // A code generator bug, not a user error: say so plainly.
      if (error) *error = "internal error: the generated rule module is invalid: " + vs.str();
      return nullptr;
    }
    m.module->addModuleFlag(llvm::Module::Error, kCodeGenLevelFlag,
                            program.mode == FieldMode::Columnar ? kColumnarCodeGenLevel : kSnapshotCodeGenLevel);
    local.ir_instructions += m.module->getInstructionCount();
    parts.push_back(std::move(m));
  }
  local.ir_ms = MsSince(t0);

  t0 = std::chrono::steady_clock::now();
  auto impl = std::make_unique<Impl>();
  impl->engine = engine;
  impl->mode = program.mode;
  impl->table_specs = PlanStringTables(program).tables;
  impl->tracker = jit.NewTracker();
  // From here on the destructor unloads whatever was added.
  std::unique_ptr<JitProgram> out(new JitProgram(std::move(impl)));
  Impl& p = *out->impl_;
  for (Part& m : parts) {
    if (llvm::Error e = jit.Add(p.tracker, llvm::orc::ThreadSafeModule(std::move(m.module), std::move(m.context)))) {
      return fail("cannot add the rule module to the JIT", std::move(e));
    }
  }
  // One lookup of every function: the modules are compiled at once (on
  // the engine had compile threads).
  std::vector<std::string> names;
  std::vector<ColumnarGroup> groups;
  if (program.mode == FieldMode::Columnar) {
    groups = ColumnarGroups(program);
    for (size_t g = 0; g < groups.size(); ++g) names.push_back(prefix + "_group" + std::to_string(g));
  } else {
    for (size_t k = 0; k * kSnapshotChunk < program.rules.size(); ++k) names.push_back(prefix + "_chunk" + std::to_string(k));
  }
  auto addrs = jit.Lookup(names);
  if (!addrs) return fail("cannot compile the rules", addrs.takeError());
  local.functions = names.size();
  if (program.mode == FieldMode::Columnar) {
    for (size_t r = 0; r < program.rules.size(); ++r) {
      if (!program.rules[r].root.valid()) p.invalid.push_back(r);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      p.groups.push_back({reinterpret_cast<GroupFn>(static_cast<uintptr_t>((*addrs)[g])), groups[g].vector,
                          std::move(groups[g].rules)});
      p.has_vector = p.has_vector || groups[g].vector;
    }
    p.layout = ColumnLayout::For(program.schema);
    p.rule_count = program.rules.size();
    for (const FieldSpec& f : program.schema.fields()) p.shapes.push_back(f.shape);
  } else {
    for (uint64_t a : *addrs) p.chunks.push_back(reinterpret_cast<ChunkFn>(static_cast<uintptr_t>(a)));
  }
  local.machine_code_ms = MsSince(t0);
  if (stats) *stats = local;
  return out;
}

void JitProgram::RunAll(const BatchView& batch, const HostContext& host, Verdict* out, uint64_t begin, uint64_t end,
                        uint64_t stride) const {
  Impl& p = *impl_;
  HostContext with_tables = host;
  with_tables.tables = p.Tables(host);
  const HostContext& h = with_tables;
  uint8_t* bytes = reinterpret_cast<uint8_t*>(out);
  uint64_t tail = (end - begin) % kLanes;
  for (const Impl::Group& g : p.groups) g.fn(&batch, bytes, &h, begin, g.vector ? end - tail : end, stride);
  if (tail && p.has_vector) {
    // The last rows of vector groups: copied into a batch of kLanes rows
    // (padded with known zeros, which no verdict kept here depends on) and
    // evaluated by the same code. Vector groups read only scalar columns,
    // list states and offsets, never element columns, which stay shared.
    const uint64_t from = end - tail;
    const size_t columns = p.layout.column_count;
    std::vector<double> values(columns * kLanes, 0.0);
    std::vector<uint8_t> states(columns * kLanes, kKnown);
    std::vector<uint32_t> offsets(p.shapes.size() * (kLanes + 1), 0);
    std::vector<const double*> value_ptrs(batch.values, batch.values + columns);
    std::vector<const uint8_t*> state_ptrs(batch.states, batch.states + columns);
    std::vector<const uint32_t*> offset_ptrs(batch.offsets, batch.offsets + p.shapes.size());
    for (size_t f = 0; f < p.shapes.size(); ++f) {
      uint32_t c = p.layout.base[f];
      for (uint64_t k = 0; k < tail; ++k) {
        values[c * kLanes + k] = batch.values[c][from + k];
        states[c * kLanes + k] = batch.states[c][from + k];
      }
      value_ptrs[c] = &values[c * kLanes];
      state_ptrs[c] = &states[c * kLanes];
      if (p.shapes[f] != FieldShape::Scalar) {
        uint32_t* o = &offsets[f * (kLanes + 1)];
        for (uint64_t k = 0; k <= kLanes; ++k) o[k] = batch.offsets[f][from + std::min(k, tail)];
        offset_ptrs[f] = o;
      }
    }
    BatchView padded{value_ptrs.data(), state_ptrs.data(), offset_ptrs.data(), kLanes};
    std::vector<uint8_t> scratch(kLanes * p.rule_count);
    for (const Impl::Group& g : p.groups) {
      if (!g.vector) continue;
      // Rule r writes scratch[r * kLanes + lane].
      g.fn(&padded, scratch.data(), &h, 0, kLanes, kLanes);
      for (size_t k = 0; k < g.rules.size(); ++k) {
        size_t r = g.rules[k];
        std::memcpy(bytes + r * stride + (from - begin), scratch.data() + r * kLanes, tail);
      }
    }
  }
  for (size_t r : p.invalid) std::fill(out + r * stride, out + r * stride + (end - begin), Verdict::Error);
}

void JitProgram::RunSnapshot(const double* snapshot, const HostContext& host, Verdict* out) const {
  HostContext h = host;
  h.tables = impl_->Tables(host);
  for (ChunkFn fn : impl_->chunks) fn(snapshot, reinterpret_cast<uint8_t*>(out), &h);
}

}  // namespace plinth::rules
