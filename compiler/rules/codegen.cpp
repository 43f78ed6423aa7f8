// Rule IR -> LLVM IR. The semantics mirror interpreter.cpp exactly (see the
// comments there and docs/rules.md); the generated code evaluates operands
// without branches where the interpreter short-circuits, which gives the same
// results because rule evaluation has no side effects and never traps (host
// helpers are only called with known operands).
//
// Compile time is the constraint here (docs/rules.md, "Performance"): no IR
// pass runs after this, and the JIT selects instructions with
// CodeGenOpt::None for columnar code. So the IR is emitted in its final
// form: rules without helper calls evaluate 4 records per iteration as LLVM
// vectors (no loop vectoriser needed), structurally equal subexpressions and
// repeated state tests are emitted once, constant operands are folded as
// instructions are built, and string functions with a constant operand read
// a per-string table instead of calling a helper.
#include <cassert>
#include <cstddef>
#include <cstring>
#include <map>
#include <unordered_map>

#include "compiler/rules/orc_jit.h"

#include <llvm/Analysis/InstSimplifyFolder.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Verifier.h>

namespace plinth::rules {

namespace {

class CodeGen {
 public:
  CodeGen(const Program& p, llvm::LLVMContext& ctx, llvm::Module& m)
      : p_(p), ctx_(ctx), m_(m), b_(ctx, llvm::InstSimplifyFolder(m.getDataLayout())), layout_(ColumnLayout::For(p.schema)) {
    f64_ = llvm::Type::getDoubleTy(ctx);
    i1_ = llvm::Type::getInt1Ty(ctx);
    i8_ = llvm::Type::getInt8Ty(ctx);
    i32_ = llvm::Type::getInt32Ty(ctx);
    i64_ = llvm::Type::getInt64Ty(ctx);
    f64p_ = f64_->getPointerTo();
    i8p_ = i8_->getPointerTo();
    i32p_ = i32_->getPointerTo();
    view_ty_ = llvm::StructType::create(ctx, {f64p_->getPointerTo(), i8p_->getPointerTo(), i32p_->getPointerTo(), i64_},
                                        "BatchView");
    // The string helpers only read memory; the regex helper allocates inside
    // RE2 (its DFA cache), so it is left unannotated.
    auto declare = [&](const char* name, llvm::Type* ret, std::vector<llvm::Type*> params, bool readonly) {
      llvm::FunctionCallee c = m_.getOrInsertFunction(name, llvm::FunctionType::get(ret, params, false));
      if (auto* f = llvm::dyn_cast<llvm::Function>(c.getCallee())) {
        f->addFnAttr(llvm::Attribute::NoUnwind);
        if (readonly) f->addFnAttr(llvm::Attribute::ReadOnly);
      }
      return c;
    };
    startswith_ = declare("plinth_rules_startswith", i8_, {i8p_, i32_, i32_}, true);
    endswith_ = declare("plinth_rules_endswith", i8_, {i8p_, i32_, i32_}, true);
    strcontains_ = declare("plinth_rules_strcontains", i8_, {i8p_, i32_, i32_}, true);
    strlen_ = declare("plinth_rules_strlen", f64_, {i8p_, i32_}, true);
    regex_count_ = declare("plinth_rules_regex_count", f64_, {i8p_, i32_, i32_}, false);
    tables_ = PlanStringTables(p);
    expensive_ = ExpensiveNodes(p, tables_);
    Canonicalize();
  }

  // void name(const BatchView*, uint8_t* out, const HostContext*, uint64_t begin, uint64_t end, uint64_t stride)
  // One pass over rows [begin, end) evaluating every rule of the group; the
  // verdict of rule r for row i goes to out[r * stride + (i - begin)].
  // Vector groups evaluate kLanes rows per iteration as LLVM vectors (no
  // scalar remainder: end - begin must be a multiple of kLanes); scalar
  // groups one row per iteration. The loop is emitted rotated (a guard, then
  // a do-while), so no loop pass has to run.
  void GroupFunction(const ColumnarGroup& group, const std::string& name) {
    auto* ft = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx_),
                                       {view_ty_->getPointerTo(), i8p_, i8p_, i64_, i64_, i64_}, false);
    llvm::Function* fn = Start(ft, name);
    lanes_ = group.vector ? kLanes : 1;
    view_ = fn->getArg(0);
    llvm::Value* out = fn->getArg(1);
    host_ = fn->getArg(2);
    llvm::Value* begin = fn->getArg(3);
    llvm::Value* end = fn->getArg(4);
    llvm::Value* stride = fn->getArg(5);
    fn->addParamAttr(0, llvm::Attribute::NoAlias);
    fn->addParamAttr(1, llvm::Attribute::NoAlias);

    auto* body = Block("row", entry_);
    auto* done = Block("done", entry_);
    b_.SetInsertPoint(entry_);
    b_.CreateCondBr(b_.CreateICmpULT(begin, end), body, done);
    std::vector<llvm::Value*> bases;  // out + r * stride, hoisted
    {
      llvm::IRBuilder<> eb(entry_->getTerminator());
      for (size_t r : group.rules) {
        bases.push_back(eb.CreateInBoundsGEP(i8_, out, eb.CreateMul(stride, llvm::ConstantInt::get(i64_, r))));
      }
    }
    b_.SetInsertPoint(body);
    llvm::PHINode* row = b_.CreatePHI(i64_, 2, "row");
    row->addIncoming(begin, entry_);
    row_ = row;
    llvm::Value* i = b_.CreateSub(row, begin);
    if (lanes_ > 1) FuseLoops(group.rules);
    for (size_t k = 0; k < group.rules.size(); ++k) {
      CV r = Emit(p_.rules[group.rules[k]].root);
      llvm::Value* at = b_.CreateInBoundsGEP(i8_, bases[k], i);
      if (lanes_ > 1) at = b_.CreateBitCast(at, Vec(i8_)->getPointerTo());
      llvm::Value* verdict = ToVerdict(r);
      if (lanes_ > 1) verdict = b_.CreateTrunc(verdict, Vec(i8_));
      b_.CreateAlignedStore(verdict, at, llvm::Align(1));
    }
    llvm::Value* next = b_.CreateAdd(row, llvm::ConstantInt::get(i64_, lanes_), "", true, true);
    row->addIncoming(next, b_.GetInsertBlock());
    b_.CreateCondBr(b_.CreateICmpULT(next, end), body, done);
    b_.SetInsertPoint(done);
    b_.CreateRetVoid();
    lanes_ = 1;
  }

  // void name(const double* snapshot, uint8_t* out, const HostContext*)
  void ChunkFunction(size_t first, size_t last, const std::string& name) {
    auto* ft = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx_), {f64p_, i8p_, i8p_}, false);
    llvm::Function* fn = Start(ft, name);
    snapshot_ = fn->getArg(0);
    llvm::Value* out = fn->getArg(1);
    host_ = fn->getArg(2);
    fn->addParamAttr(1, llvm::Attribute::NoAlias);
    auto* body = Block("body", entry_);
    b_.SetInsertPoint(entry_);
    b_.CreateBr(body);
    b_.SetInsertPoint(body);
    for (size_t r = first; r < last; ++r) {
      llvm::Value* verdict = p_.rules[r].root.valid() ? ToVerdict(Emit(p_.rules[r].root))
                                                      : llvm::ConstantInt::get(i8_, static_cast<uint64_t>(Verdict::Error));
      b_.CreateStore(verdict, b_.CreateConstInBoundsGEP1_64(i8_, out, r));
    }
    b_.CreateRetVoid();
  }

 private:
  struct CV {
    llvm::Value* v;  // double
    llvm::Value* s;  // i8 State
  };
  struct Acc {
    llvm::Value* st;     // i8
    llvm::Value* dec;    // i1: a decisive element was seen (alltrue: false; anytrue/contains: true)
    llvm::Value* count;  // i64
    llvm::Value* total;  // double
  };

  llvm::Function* Start(llvm::FunctionType* ft, const std::string& name) {
    llvm::Function* fn = llvm::Function::Create(ft, llvm::Function::ExternalLinkage, name, m_);
    fn->addFnAttr(llvm::Attribute::NoUnwind);
    entry_ = llvm::BasicBlock::Create(ctx_, "entry", fn);
    col_values_.clear();
    col_states_.clear();
    offsets_.clear();
    arrays_[0] = arrays_[1] = arrays_[2] = nullptr;
    elem_.assign(p_.loops.size(), nullptr);
    tables_base_ = nullptr;
    table_bases_.clear();
    emitted_.clear();
    fused_.clear();
    memo_.clear();
    truth_.clear();
    idom_.clear();
    loop_begin_.assign(p_.loops.size(), nullptr);
    view_ = snapshot_ = host_ = row_ = nullptr;
    return fn;
  }

  // ---- constants and small helpers
  // The type of one value per lane: `t` itself, or a vector of kLanes.
  llvm::Type* Vec(llvm::Type* t) {
    return lanes_ > 1 ? static_cast<llvm::Type*>(llvm::FixedVectorType::get(t, lanes_)) : t;
  }
  llvm::Constant* Splat(llvm::Constant* c) {
    return lanes_ > 1 ? llvm::ConstantVector::getSplat(llvm::ElementCount::getFixed(lanes_), c) : c;
  }
  // States are i8 in scalar code; vector code widens them to i32 lanes on
  // load (<4 x i32> is a legal x86 type, <4 x i8> is not, and legalising it
  // costs instruction selection time on every operation).
  llvm::Type* St() { return lanes_ > 1 ? i32_ : i8_; }
  llvm::Constant* S(State s) { return Splat(llvm::ConstantInt::get(St(), s)); }
  llvm::Constant* I8(uint8_t v) { return Splat(llvm::ConstantInt::get(St(), v)); }
  llvm::Value* WidenState(llvm::Value* s) { return lanes_ > 1 ? b_.CreateZExt(s, Vec(i32_)) : s; }
  llvm::Constant* I64(uint64_t v) { return Splat(llvm::ConstantInt::get(i64_, v)); }
  llvm::Constant* False() { return Splat(llvm::ConstantInt::getFalse(ctx_)); }
  llvm::Constant* F(double v) { return Splat(llvm::ConstantFP::get(f64_, v)); }
  // Scalar code branches around expensive operands; vector code never branches.
  bool Expensive(NodeId id) const { return lanes_ == 1 && expensive_[id.index]; }
  llvm::BasicBlock* Block(const char* name, llvm::BasicBlock* idom) {
    llvm::BasicBlock* bb = llvm::BasicBlock::Create(ctx_, name, entry_->getParent());
    idom_[bb] = idom;
    return bb;
  }
  // State arithmetic, folded by hand (intrinsic calls are not folded by
  // the builder): states are at most kNull, and a known operand is neutral.
  static bool IsConst(llvm::Value* v, uint8_t x) {
    auto* c = llvm::dyn_cast<llvm::Constant>(v);
    if (!c) return false;
    if (c->getType()->isVectorTy()) c = c->getSplatValue();
    auto* i = llvm::dyn_cast_or_null<llvm::ConstantInt>(c);
    return i && i->getZExtValue() == x;
  }
  llvm::Value* Umax(llvm::Value* a, llvm::Value* b) {
    if (IsConst(a, kKnown) || a == b) return b;
    if (IsConst(b, kKnown)) return a;
    return b_.CreateBinaryIntrinsic(llvm::Intrinsic::umax, a, b);
  }
  llvm::Value* Umin(llvm::Value* a, llvm::Value* b) {
    if (IsConst(a, kKnown) || IsConst(b, kKnown)) return S(kKnown);
    if (IsConst(b, kNull) || a == b) return a;
    if (IsConst(a, kNull)) return b;
    return b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, a, b);
  }
  llvm::Value* Strict(llvm::Value* a, llvm::Value* b) { return Umin(Umax(a, b), S(kError)); }
  llvm::Value* Strict1(llvm::Value* a) { return Umin(a, S(kError)); }
  // The small operations every node repeats (a state test, a truth test)
  // are emitted once per operand, like nodes (Emit): reused in the block
  // they were computed in and the blocks it dominates.
  template <typename Make>
  llvm::Value* Memo(int op, llvm::Value* a, uint64_t b, Make make) {
    for (llvm::BasicBlock* bb = b_.GetInsertBlock(); bb; bb = idom_[bb]) {
      auto it = memo_.find({op, a, b, bb});
      if (it != memo_.end()) return it->second;
    }
    llvm::Value* r = make();
    memo_.emplace(std::make_tuple(op, a, b, b_.GetInsertBlock()), r);
    return r;
  }
  llvm::Value* Is(llvm::Value* s, State x) {
    return Memo(0, s, x, [&] { return b_.CreateICmpEQ(s, S(x)); });
  }
  // A bool value as a double; Zero and NonZero of it give back the i1.
  llvm::Value* Bool(llvm::Value* i1) {
    llvm::Value* v = b_.CreateSelect(i1, F(1), F(0));
    truth_.emplace(v, i1);
    return v;
  }
  llvm::Value* NonZero(llvm::Value* v) {  // v != 0
    if (auto it = truth_.find(v); it != truth_.end()) return it->second;
    return Memo(1, v, 0, [&] { return b_.CreateFCmpUNE(v, F(0)); });
  }
  llvm::Value* Zero(llvm::Value* v) {  // v == 0
    if (auto it = truth_.find(v); it != truth_.end()) return Memo(2, it->second, 0, [&] { return b_.CreateNot(it->second); });
    return Memo(3, v, 0, [&] { return b_.CreateFCmpOEQ(v, F(0)); });
  }

  llvm::Value* ToVerdict(CV r) {
    llvm::Value* known = b_.CreateZExt(NonZero(r.v), Vec(St()));
    llvm::Value* other = b_.CreateSelect(Is(r.s, kUnknown), I8(2), I8(3));
    return b_.CreateSelect(Is(r.s, kKnown), known, other);
  }

  // ---- hoisted loads (entry block: loop-invariant by construction)
  llvm::Value* Array(int which) {
    if (!arrays_[which]) {
      llvm::IRBuilder<> eb(entry_->getTerminator());
      llvm::Type* t = which == 0 ? f64p_->getPointerTo() : which == 1 ? i8p_->getPointerTo() : i32p_->getPointerTo();
      arrays_[which] = eb.CreateLoad(t, eb.CreateStructGEP(view_ty_, view_, static_cast<unsigned>(which)));
    }
    return arrays_[which];
  }
  llvm::Value* Hoisted(std::unordered_map<uint32_t, llvm::Value*>& cache, int which, llvm::Type* elem, uint32_t index) {
    auto it = cache.find(index);
    if (it != cache.end()) return it->second;
    llvm::Value* arr = Array(which);
    llvm::IRBuilder<> eb(entry_->getTerminator());
    llvm::Value* p = eb.CreateLoad(elem, eb.CreateConstInBoundsGEP1_64(elem, arr, index));
    cache.emplace(index, p);
    return p;
  }
  llvm::Value* ColValues(uint32_t col) { return Hoisted(col_values_, 0, f64p_, col); }
  llvm::Value* ColStates(uint32_t col) { return Hoisted(col_states_, 1, i8p_, col); }
  llvm::Value* Offsets(uint32_t field) { return Hoisted(offsets_, 2, i32p_, field); }

  // Loads lanes_ consecutive elements of `base` from `index` on.
  llvm::Value* LoadAt(llvm::Type* elem, llvm::Value* base, llvm::Value* index) {
    llvm::Value* at = b_.CreateInBoundsGEP(elem, base, index);
    if (lanes_ == 1) return b_.CreateLoad(elem, at);
    llvm::Type* vt = Vec(elem);
    return b_.CreateAlignedLoad(vt, b_.CreateBitCast(at, vt->getPointerTo()), llvm::Align(elem->getScalarSizeInBits() / 8));
  }
  CV LoadColumn(uint32_t col, llvm::Value* index) {
    return {LoadAt(f64_, ColValues(col), index), WidenState(LoadAt(i8_, ColStates(col), index))};
  }

  // ---- expressions
  // Structurally equal nodes (common in rule sets: the same field test in
  // many rules) are emitted once: a value is reused in the block it was
  // computed in and in the blocks that block dominates (idom_, recorded as
  // blocks are created; code is only ever added to the current block).
  CV Emit(NodeId id) {
    for (llvm::BasicBlock* bb = b_.GetInsertBlock(); bb; bb = idom_[bb]) {
      auto it = emitted_.find({canon_[id.index], lanes_, bb});
      if (it != emitted_.end()) return it->second;
    }
    CV r = EmitNode(id);
    // The node's own code may have moved on to a new block; it is cached for
    // the block its value is available in.
    emitted_.emplace(std::make_tuple(canon_[id.index], lanes_, b_.GetInsertBlock()), r);
    return r;
  }

  // Numbers nodes so that structurally equal subtrees get the same number.
  void Canonicalize() {
    std::map<std::vector<uint64_t>, uint32_t> ids;
    canon_.resize(p_.nodes.size());
    for (size_t i = 0; i < p_.nodes.size(); ++i) {
      const Node& n = p_.nodes[i];
      uint64_t bits;
      std::memcpy(&bits, &n.number, sizeof bits);
      std::vector<uint64_t> key = {static_cast<uint64_t>(n.kind), n.const_state, n.payload, n.payload2, bits};
      for (NodeId c : {n.a, n.b, n.c}) key.push_back(c.valid() ? canon_[c.index] : UINT64_MAX);
      for (uint32_t k = 0; k < n.arg_count; ++k) key.push_back(canon_[p_.arg(n, k).index]);
      canon_[i] = ids.emplace(std::move(key), static_cast<uint32_t>(ids.size())).first->second;
    }
  }

  CV EmitNode(NodeId id) {
    const Node& n = p_.node(id);
    switch (n.kind) {
      case NodeKind::Const: return {F(n.number), S(n.const_state)};
      case NodeKind::Field: {
        if (p_.mode == FieldMode::Snapshot) {
          llvm::Value* v = b_.CreateLoad(f64_, b_.CreateConstInBoundsGEP1_64(f64_, snapshot_, n.payload));
          return {v, b_.CreateSelect(b_.CreateFCmpUNO(v, v), S(kUnknown), S(kKnown))};
        }
        return LoadColumn(layout_.base[n.payload], row_);
      }
      case NodeKind::Element:
      case NodeKind::ElementAttr: {
        uint32_t col = layout_.base[p_.loop(n.payload).field.index] + 1 +
                       (n.kind == NodeKind::ElementAttr ? n.payload2 : 0);
        if (lanes_ == 1) return LoadColumn(col, elem_[n.payload]);
        // elem_ holds a valid element index in every lane (VectorLoop).
        return {Gather(f64_, ColValues(col), elem_[n.payload]), WidenState(Gather(i8_, ColStates(col), elem_[n.payload]))};
      }
      case NodeKind::LoopIndex:
        return {b_.CreateUIToFP(b_.CreateSub(elem_[n.payload], loop_begin_[n.payload]), Vec(f64_)), S(kKnown)};
      case NodeKind::Neg: {
        CV a = Emit(n.a);
        return {b_.CreateFNeg(a.v), Strict1(a.s)};
      }
      case NodeKind::Not: {
        CV a = Emit(n.a);
        return {Bool(Zero(a.v)), Strict1(a.s)};
      }
      case NodeKind::Add:
      case NodeKind::Sub:
      case NodeKind::Mul:
      case NodeKind::Div:
      case NodeKind::Mod:
      case NodeKind::Lt:
      case NodeKind::Le:
      case NodeKind::Gt:
      case NodeKind::Ge: {
        CV a = Emit(n.a), b = Emit(n.b);
        llvm::Value* s = Strict(a.s, b.s);
        llvm::Value* v = nullptr;
        switch (n.kind) {
          case NodeKind::Add: v = b_.CreateFAdd(a.v, b.v); break;
          case NodeKind::Sub: v = b_.CreateFSub(a.v, b.v); break;
          case NodeKind::Mul: v = b_.CreateFMul(a.v, b.v); break;
          case NodeKind::Div:
          case NodeKind::Mod:
            v = n.kind == NodeKind::Div ? b_.CreateFDiv(a.v, b.v) : b_.CreateFRem(a.v, b.v);
            s = b_.CreateSelect(b_.CreateAnd(Zero(b.v), Is(s, kKnown)), S(kError), s);
            break;
          case NodeKind::Lt: v = Bool(b_.CreateFCmpOLT(a.v, b.v)); break;
          case NodeKind::Le: v = Bool(b_.CreateFCmpOLE(a.v, b.v)); break;
          case NodeKind::Gt: v = Bool(b_.CreateFCmpOGT(a.v, b.v)); break;
          default: v = Bool(b_.CreateFCmpOGE(a.v, b.v)); break;
        }
        return {v, s};
      }
      case NodeKind::Eq:
      case NodeKind::Ne: return Equal(Emit(n.a), Emit(n.b), n.kind == NodeKind::Ne);
      case NodeKind::And:
      case NodeKind::Or: return Logic(n);
      case NodeKind::Cond: {
        if (Expensive(n.b) || Expensive(n.c)) return BranchingCond(n);
        CV c = Emit(n.a), a = Emit(n.b), b = Emit(n.c);
        llvm::Value* known = Is(c.s, kKnown);
        llvm::Value* pick = NonZero(c.v);
        return {b_.CreateSelect(known, b_.CreateSelect(pick, a.v, b.v), F(0)),
                b_.CreateSelect(known, b_.CreateSelect(pick, a.s, b.s), Strict1(c.s))};
      }
      case NodeKind::Min:
      case NodeKind::Max: {
        CV best = Emit(p_.arg(n, 0));
        llvm::Value* s = Strict1(best.s);
        llvm::Value* v = best.v;
        for (uint32_t i = 1; i < n.arg_count; ++i) {
          CV x = Emit(p_.arg(n, i));
          s = Strict(s, x.s);
          llvm::Value* better = n.kind == NodeKind::Max ? b_.CreateFCmpOGT(x.v, v) : b_.CreateFCmpOLT(x.v, v);
          v = b_.CreateSelect(better, x.v, v);
        }
        return {v, s};
      }
      case NodeKind::StartsWith:
      case NodeKind::EndsWith:
      case NodeKind::StrContains: {
        CV a = Emit(n.a), b = Emit(n.b);
        if (uint32_t t = tables_.by_node[id.index]; t != UINT32_MAX) {
          return TableLookup(t, tables_.tables[t].constant_first ? b : a, Strict(a.s, b.s));
        }
        assert(lanes_ == 1);
        llvm::FunctionCallee fn = n.kind == NodeKind::StartsWith ? startswith_
                                  : n.kind == NodeKind::EndsWith ? endswith_
                                                                 : strcontains_;
        return Helper(Strict(a.s, b.s), [&] {
          llvm::Value* r = b_.CreateCall(fn, {host_, b_.CreateFPToUI(a.v, i32_), b_.CreateFPToUI(b.v, i32_)});
          return CV{b_.CreateUIToFP(r, f64_), S(kKnown)};
        });
      }
      case NodeKind::StrLength: {
        CV a = Emit(n.a);
        if (uint32_t t = tables_.by_node[id.index]; t != UINT32_MAX) return TableLookup(t, a, Strict1(a.s));
        assert(lanes_ == 1);
        return Helper(Strict1(a.s), [&] {
          return CV{b_.CreateCall(strlen_, {host_, b_.CreateFPToUI(a.v, i32_)}), S(kKnown)};
        });
      }
      case NodeKind::RegexCount: {
        CV a = Emit(n.a);
        if (uint32_t t = tables_.by_node[id.index]; t != UINT32_MAX) {
          CV c = TableLookup(t, a, Strict1(a.s));
          return {c.v, b_.CreateSelect(b_.CreateFCmpOLT(c.v, F(0)), S(kError), c.s)};
        }
        assert(lanes_ == 1);
        return Helper(Strict1(a.s), [&] {
          llvm::Value* c = b_.CreateCall(regex_count_,
                                         {host_, llvm::ConstantInt::get(i32_, n.payload), b_.CreateFPToUI(a.v, i32_)});
          return CV{c, b_.CreateSelect(b_.CreateFCmpOLT(c, F(0)), S(kError), S(kKnown))};
        });
      }
      case NodeKind::AllTrue:
      case NodeKind::AnyTrue:
      case NodeKind::Count:
      case NodeKind::Sum:
      case NodeKind::Contains: return Aggregate(n);
    }
    return {F(0), S(kError)};
  }

  // Kleene && and ||. Cheap operands are combined without branches (both
  // sides evaluated, which keeps row loops vectorisable); when an operand
  // calls a helper or loops, the cheap side is evaluated first and the other
  // only when the first does not decide, as the interpreter does. Kleene
  // logic is symmetric, so the order does not change the result.
  CV Logic(const Node& n) {
    bool is_and = n.kind == NodeKind::And;
    auto decides = [&](CV x) { return b_.CreateAnd(Is(x.s, kKnown), is_and ? Zero(x.v) : NonZero(x.v)); };
    auto combine = [&](CV a, CV b) -> CV {
      llvm::Value* dec = b_.CreateOr(decides(a), decides(b));
      return {Bool(is_and ? b_.CreateNot(dec) : dec),
              b_.CreateSelect(dec, S(kKnown), Strict(a.s, b.s))};
    };
    bool ea = Expensive(n.a), eb = Expensive(n.b);
    if (!ea && !eb) return combine(Emit(n.a), Emit(n.b));
    NodeId first = ea && !eb ? n.b : n.a;
    NodeId second = first == n.a ? n.b : n.a;
    CV a = Emit(first);
    llvm::BasicBlock* from = b_.GetInsertBlock();
    auto* rhs = Block("rhs", from);
    auto* join = Block("logic", from);
    b_.CreateCondBr(decides(a), join, rhs);
    b_.SetInsertPoint(rhs);
    CV r = combine(a, Emit(second));
    llvm::BasicBlock* rhs_end = b_.GetInsertBlock();
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
    llvm::PHINode* v = b_.CreatePHI(f64_, 2);
    v->addIncoming(F(is_and ? 0 : 1), from);
    v->addIncoming(r.v, rhs_end);
    llvm::PHINode* s = b_.CreatePHI(i8_, 2);
    s->addIncoming(S(kKnown), from);
    s->addIncoming(r.s, rhs_end);
    return {v, s};
  }

  // c ? a : b evaluating only the chosen branch (used when a branch is expensive).
  CV BranchingCond(const Node& n) {
    CV c = Emit(n.a);
    llvm::Value* undecided = Strict1(c.s);
    llvm::BasicBlock* from = b_.GetInsertBlock();
    auto* choose = Block("cond.known", from);
    auto* then = Block("cond.then", choose);
    auto* other = Block("cond.else", choose);
    auto* join = Block("cond", from);
    b_.CreateCondBr(Is(c.s, kKnown), choose, join);
    b_.SetInsertPoint(choose);
    b_.CreateCondBr(NonZero(c.v), then, other);
    b_.SetInsertPoint(then);
    CV a = Emit(n.b);
    llvm::BasicBlock* then_end = b_.GetInsertBlock();
    b_.CreateBr(join);
    b_.SetInsertPoint(other);
    CV b = Emit(n.c);
    llvm::BasicBlock* other_end = b_.GetInsertBlock();
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
    llvm::PHINode* v = b_.CreatePHI(f64_, 3);
    v->addIncoming(F(0), from);
    v->addIncoming(a.v, then_end);
    v->addIncoming(b.v, other_end);
    llvm::PHINode* s = b_.CreatePHI(i8_, 3);
    s->addIncoming(undecided, from);
    s->addIncoming(a.s, then_end);
    s->addIncoming(b.s, other_end);
    return {v, s};
  }

  CV Equal(CV a, CV b, bool negate) {
    llvm::Value* na = Is(a.s, kNull);
    llvm::Value* nb = Is(b.s, kNull);
    llvm::Value* s = Umax(b_.CreateSelect(na, S(kKnown), a.s), b_.CreateSelect(nb, S(kKnown), b.s));
    llvm::Value* both_values = b_.CreateAnd(b_.CreateNot(na), b_.CreateNot(nb));
    llvm::Value* eq = b_.CreateOr(b_.CreateAnd(na, nb), b_.CreateAnd(both_values, b_.CreateFCmpOEQ(a.v, b.v)));
    if (negate) eq = b_.CreateNot(eq);
    return {Bool(eq), s};
  }

  // table[str] when `s` is known, else {0, s} (as Helper()).
  CV TableLookup(uint32_t table, CV str, llvm::Value* s) {
    llvm::Value* known = Is(s, kKnown);
    llvm::Value* base = Table(table);
    // Ids of values that are not known are not read; index 0 keeps the
    // address in range (the pool is never empty while a table is read).
    llvm::Value* id = b_.CreateFPToUI(b_.CreateSelect(known, str.v, F(0)), Vec(i32_));
    llvm::Value* at = b_.CreateInBoundsGEP(f64_, base, id);
    if (lanes_ == 1) return {b_.CreateSelect(known, b_.CreateLoad(f64_, at), F(0)), s};
    return {b_.CreateMaskedGather(Vec(f64_), at, llvm::Align(8), known, F(0)), s};
  }
  llvm::Value* Table(uint32_t table) {
    auto it = table_bases_.find(table);
    if (it != table_bases_.end()) return it->second;
    llvm::IRBuilder<> eb(entry_->getTerminator());
    if (!tables_base_) {
      llvm::Value* field = eb.CreateConstInBoundsGEP1_64(i8_, host_, offsetof(HostContext, tables));
      tables_base_ = eb.CreateLoad(f64p_->getPointerTo(), eb.CreateBitCast(field, f64p_->getPointerTo()->getPointerTo()));
    }
    llvm::Value* p = eb.CreateLoad(f64p_, eb.CreateConstInBoundsGEP1_64(f64p_, tables_base_, table));
    table_bases_.emplace(table, p);
    return p;
  }

  // Calls a host helper only when `s` is known: {call result} or {0, s}.
  template <typename Body>
  CV Helper(llvm::Value* s, Body body) {
    llvm::BasicBlock* from = b_.GetInsertBlock();
    auto* call = Block("call", from);
    auto* join = Block("join", from);
    b_.CreateCondBr(Is(s, kKnown), call, join);
    b_.SetInsertPoint(call);
    CV r = body();
    llvm::BasicBlock* call_end = b_.GetInsertBlock();
    b_.CreateBr(join);
    b_.SetInsertPoint(join);
    llvm::PHINode* v = b_.CreatePHI(f64_, 2);
    v->addIncoming(F(0), from);
    v->addIncoming(r.v, call_end);
    llvm::PHINode* st = b_.CreatePHI(i8_, 2);
    st->addIncoming(s, from);
    st->addIncoming(r.s, call_end);
    return {v, st};
  }

  // ---- aggregates (see Interpreter::Aggregate)
  Acc Contribute(const Node& n, Acc acc, CV f, const CV* value, CV needle) {
    llvm::Value* skip = b_.CreateAnd(Is(f.s, kKnown), Zero(f.v));
    llvm::Value* take = b_.CreateAnd(Is(f.s, kKnown), NonZero(f.v));
    switch (n.kind) {
      case NodeKind::AllTrue:
      case NodeKind::AnyTrue:
      case NodeKind::Contains: {
        CV v = *value;
        if (n.kind == NodeKind::Contains) v = Equal(v, needle, false);
        bool all = n.kind == NodeKind::AllTrue;
        // alltrue: an element is neutral when V is known true; anytrue: known false.
        llvm::Value* neutral_v = b_.CreateAnd(Is(v.s, kKnown), all ? NonZero(v.v) : Zero(v.v));
        llvm::Value* neutral = b_.CreateOr(skip, neutral_v);
        llvm::Value* c = Strict(f.s, v.s);
        acc.dec = b_.CreateOr(acc.dec, b_.CreateAnd(b_.CreateNot(neutral), Is(c, kKnown)));
        acc.st = Umax(acc.st, b_.CreateSelect(neutral, S(kKnown), c));
        break;
      }
      case NodeKind::Count: {
        llvm::Value* c = Strict1(f.s);
        if (value) c = Umax(c, b_.CreateSelect(Is(value->s, kError), S(kError), S(kKnown)));
        acc.st = Umax(acc.st, b_.CreateSelect(skip, S(kKnown), c));
        acc.count = b_.CreateAdd(acc.count, b_.CreateZExt(take, Vec(i64_)));
        break;
      }
      case NodeKind::Sum: {
        acc.st = Umax(acc.st, b_.CreateSelect(skip, S(kKnown), Strict(f.s, value->s)));
        acc.total = b_.CreateSelect(take, b_.CreateFAdd(acc.total, value->v), acc.total);
        acc.count = b_.CreateAdd(acc.count, b_.CreateZExt(take, Vec(i64_)));
        break;
      }
      default: break;
    }
    return acc;
  }

  CV Finish(const Node& n, Acc acc) {
    switch (n.kind) {
      case NodeKind::AllTrue:
        return {Bool(b_.CreateNot(acc.dec)), b_.CreateSelect(acc.dec, S(kKnown), acc.st)};
      case NodeKind::AnyTrue:
      case NodeKind::Contains:
        return {Bool(acc.dec), b_.CreateSelect(acc.dec, S(kKnown), acc.st)};
      case NodeKind::Count: return {b_.CreateUIToFP(acc.count, Vec(f64_)), acc.st};
      case NodeKind::Sum: {
        llvm::Value* empty = b_.CreateAnd(Is(acc.st, kKnown), b_.CreateICmpEQ(acc.count, I64(0)));
        return {acc.total, b_.CreateSelect(empty, S(kError), acc.st)};
      }
      default: return {F(0), S(kError)};
    }
  }

  CV Aggregate(const Node& n) {
    if (lanes_ > 1) {
      auto it = fused_.find(canon_[&n - p_.nodes.data()]);
      if (it != fused_.end()) return it->second;
    }
    CV needle{F(0), S(kKnown)};
    CV yes{F(1), S(kKnown)};
    Acc acc{S(kKnown), False(), I64(0), F(0)};
    if (n.payload == kNoLoop) {
      if (n.kind == NodeKind::Contains) needle = Emit(n.a);
      for (uint32_t i = 0; i < n.arg_count; ++i) {
        CV v = Emit(p_.arg(n, i));
        acc = Contribute(n, acc, yes, &v, needle);
      }
      return Finish(n, acc);
    }
    const Loop& loop = p_.loop(n.payload);
    LoopStart start = StartLoop(n);
    acc = start.job.acc;
    needle = start.job.needle;
    llvm::Value *begin = start.begin, *end = start.end;
    if (n.kind == NodeKind::Count && CountsElements(p_, loop)) {
      acc.count = b_.CreateSub(end, begin);
      return Finish(n, acc);
    }
    if (lanes_ > 1) return VectorLoop({start.job}, begin, end)[0];

    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = Block("elems", pre);
    auto* body = Block("elem", header);
    auto* after = Block("elems.done", header);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* i = b_.CreatePHI(i64_, 2, "i");
    llvm::PHINode* st = b_.CreatePHI(i8_, 2);
    llvm::PHINode* dec = b_.CreatePHI(i1_, 2);
    llvm::PHINode* count = b_.CreatePHI(i64_, 2);
    llvm::PHINode* total = b_.CreatePHI(f64_, 2);
    i->addIncoming(begin, pre);
    st->addIncoming(acc.st, pre);
    dec->addIncoming(acc.dec, pre);
    count->addIncoming(acc.count, pre);
    total->addIncoming(acc.total, pre);
    b_.CreateCondBr(b_.CreateICmpULT(i, end), body, after);

    b_.SetInsertPoint(body);
    elem_[n.payload] = i;
    loop_begin_[n.payload] = begin;
    CV f = loop.filter.valid() ? Emit(loop.filter) : yes;
    CV v{F(0), S(kKnown)};
    bool has_value = loop.value.valid();
    if (has_value) v = Emit(loop.value);
    Acc next = Contribute(n, Acc{st, dec, count, total}, f, has_value ? &v : nullptr, needle);
    llvm::BasicBlock* latch = b_.GetInsertBlock();
    i->addIncoming(b_.CreateAdd(i, llvm::ConstantInt::get(i64_, 1), "", true, true), latch);
    st->addIncoming(next.st, latch);
    dec->addIncoming(next.dec, latch);
    count->addIncoming(next.count, latch);
    total->addIncoming(next.total, latch);
    b_.CreateBr(header);

    b_.SetInsertPoint(after);
    return Finish(n, Acc{st, dec, count, total});
  }

  // Loads base[index[lane]] for every lane; every index must be valid.
  // Memoised: fused loops (FuseLoops) read the same elements for many rules.
  llvm::Value* Gather(llvm::Type* elem, llvm::Value* base, llvm::Value* index) {
    return Memo(4, index, reinterpret_cast<uintptr_t>(base), [&] {
      llvm::Constant* all = llvm::ConstantInt::getTrue(llvm::FixedVectorType::get(i1_, lanes_));
      return b_.CreateMaskedGather(Vec(elem), b_.CreateInBoundsGEP(elem, base, index),
                                   llvm::Align(elem->getScalarSizeInBits() / 8), all);
    });
  }

  // An element loop over kLanes records at once: iteration k visits element k
  // of each record's list, in the lanes whose list is that long, up to the
  // longest list. Accumulators of the other lanes are left unchanged, so
  // each lane folds exactly its own elements, in order. Their element index
  // is replaced by 0, which is valid whenever the body runs (some lane then
  // has an element), so the gathers need no mask.
  struct LoopJob {
    const Node* n;
    Acc acc;  // initial state
    CV needle;
  };
  std::vector<CV> VectorLoop(const std::vector<LoopJob>& jobs, llvm::Value* begin, llvm::Value* end) {
    llvm::Value* len = b_.CreateSub(end, begin);
    llvm::Value* longest = b_.CreateUnaryIntrinsic(llvm::Intrinsic::vector_reduce_umax, len);
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = Block("elems", pre);
    auto* body = Block("elem", header);
    auto* after = Block("elems.done", header);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* k = b_.CreatePHI(i64_, 2, "k");
    k->addIncoming(llvm::ConstantInt::get(i64_, 0), pre);
    struct Carried {
      llvm::PHINode *st, *dec, *count, *total;
      Acc now;
    };
    std::vector<Carried> carried;
    for (const LoopJob& job : jobs) {
      // Only the accumulators this aggregate uses are carried.
      NodeKind kind = job.n->kind;
      bool counts = kind == NodeKind::Count || kind == NodeKind::Sum;
      auto carry = [&](llvm::Value* init, bool used) -> llvm::PHINode* {
        if (!used) return nullptr;
        llvm::PHINode* phi = b_.CreatePHI(init->getType(), 2);
        phi->addIncoming(init, pre);
        return phi;
      };
      Carried c;
      c.st = carry(job.acc.st, true);
      c.dec = carry(job.acc.dec, !counts);
      c.count = carry(job.acc.count, counts);
      c.total = carry(job.acc.total, kind == NodeKind::Sum);
      auto cur = [](llvm::PHINode* phi, llvm::Value* init) -> llvm::Value* { return phi ? phi : init; };
      c.now = Acc{c.st, cur(c.dec, job.acc.dec), cur(c.count, job.acc.count), cur(c.total, job.acc.total)};
      carried.push_back(c);
    }
    b_.CreateCondBr(b_.CreateICmpULT(k, longest), body, after);

    b_.SetInsertPoint(body);
    llvm::Value* ks = b_.CreateVectorSplat(lanes_, k);
    llvm::Value* active = b_.CreateICmpULT(ks, len);
    llvm::Value* index = b_.CreateSelect(active, b_.CreateAdd(begin, ks), I64(0));
    std::vector<Acc> next;
    for (size_t j = 0; j < jobs.size(); ++j) {
      const Node& n = *jobs[j].n;
      const Loop& loop = p_.loop(n.payload);
      elem_[n.payload] = index;
      loop_begin_[n.payload] = begin;
      CV yes{F(1), S(kKnown)};
      CV f = loop.filter.valid() ? Emit(loop.filter) : yes;
      CV v{F(0), S(kKnown)};
      bool has_value = loop.value.valid();
      if (has_value) v = Emit(loop.value);
      next.push_back(Contribute(n, carried[j].now, f, has_value ? &v : nullptr, jobs[j].needle));
    }
    llvm::BasicBlock* latch = b_.GetInsertBlock();
    k->addIncoming(b_.CreateAdd(k, llvm::ConstantInt::get(i64_, 1), "", true, true), latch);
    for (size_t j = 0; j < jobs.size(); ++j) {
      Carried& c = carried[j];
      c.st->addIncoming(b_.CreateSelect(active, next[j].st, c.st), latch);
      if (c.dec) c.dec->addIncoming(b_.CreateSelect(active, next[j].dec, c.dec), latch);
      if (c.count) c.count->addIncoming(b_.CreateSelect(active, next[j].count, c.count), latch);
      if (c.total) c.total->addIncoming(b_.CreateSelect(active, next[j].total, c.total), latch);
    }
    b_.CreateBr(header);

    b_.SetInsertPoint(after);
    std::vector<CV> out;
    for (size_t j = 0; j < jobs.size(); ++j) out.push_back(Finish(*jobs[j].n, carried[j].now));
    return out;
  }

  // The start of an aggregate over a loop: the needle, the list's element
  // range (empty unless the list is known) and the initial state.
  struct LoopStart {
    LoopJob job;
    llvm::Value *begin, *end;
  };
  LoopStart StartLoop(const Node& n) {
    const Loop& loop = p_.loop(n.payload);
    CV needle{F(0), S(kKnown)};
    if (n.kind == NodeKind::Contains) needle = Emit(n.a);
    Acc acc{S(kKnown), False(), I64(0), F(0)};
    uint32_t field = loop.field.index;
    llvm::Value* ls = WidenState(LoadAt(i8_, ColStates(layout_.base[field]), row_));
    llvm::Value* off = Offsets(field);
    llvm::Value* begin = b_.CreateZExt(LoadAt(i32_, off, row_), Vec(i64_));
    llvm::Value* end = b_.CreateZExt(LoadAt(i32_, off, b_.CreateAdd(row_, llvm::ConstantInt::get(i64_, 1))), Vec(i64_));
    llvm::Value* known = Is(ls, kKnown);
    end = b_.CreateSelect(known, end, begin);
    acc.st = b_.CreateSelect(known, S(kKnown),
                             b_.CreateSelect(Is(ls, kUnknown), S(kUnknown), S(loop.null_is_empty ? kKnown : kError)));
    return {{&n, acc, needle}, begin, end};
  }

  // Vector groups: every aggregate over element loops that is not itself
  // inside a loop is computed up front, one loop per list field for all the
  // group's aggregates over it, so elements are read once for all of them.
  void FuseLoops(const std::vector<size_t>& rules) {
    std::map<uint32_t, std::vector<NodeId>> by_field;
    std::vector<bool> seen(p_.nodes.size(), false);
    std::vector<bool> canon_seen(p_.nodes.size(), false);
    std::vector<NodeId> stack;
    for (size_t r : rules) stack.push_back(p_.rules[r].root);
    while (!stack.empty()) {
      NodeId id = stack.back();
      stack.pop_back();
      if (!id.valid() || seen[id.index]) continue;
      seen[id.index] = true;
      const Node& n = p_.node(id);
      for (NodeId c : {n.a, n.b, n.c}) stack.push_back(c);
      for (uint32_t k = 0; k < n.arg_count; ++k) stack.push_back(p_.arg(n, k));
      bool aggregate = n.kind == NodeKind::AllTrue || n.kind == NodeKind::AnyTrue || n.kind == NodeKind::Count ||
                       n.kind == NodeKind::Sum || n.kind == NodeKind::Contains;
      if (!aggregate || n.payload == kNoLoop) continue;
      if (n.kind == NodeKind::Count && CountsElements(p_, p_.loop(n.payload))) continue;
      if (canon_seen[canon_[id.index]]) continue;
      canon_seen[canon_[id.index]] = true;
      by_field[p_.loop(n.payload).field.index].push_back(id);
    }
    for (auto& [field, ids] : by_field) {
      std::vector<LoopJob> jobs;
      llvm::Value *begin = nullptr, *end = nullptr;
      for (NodeId id : ids) {
        LoopStart start = StartLoop(p_.node(id));
        jobs.push_back(start.job);
        begin = start.begin;  // the same for every loop over the field (CSE)
        end = start.end;
      }
      std::vector<CV> results = VectorLoop(jobs, begin, end);
      for (size_t j = 0; j < ids.size(); ++j) fused_.emplace(canon_[ids[j].index], results[j]);
    }
  }

  const Program& p_;
  llvm::LLVMContext& ctx_;
  llvm::Module& m_;
  // Folds what the emitters produce for constant or trivial operands
  // (x & true, x | false, select(c, x, x), ...) as instructions are
  // created, so no pass has to clean up.
  llvm::IRBuilder<llvm::InstSimplifyFolder> b_;
  ColumnLayout layout_;
  llvm::Type *f64_, *i1_, *i8_, *i32_, *i64_;
  llvm::PointerType *f64p_, *i8p_, *i32p_;
  llvm::StructType* view_ty_;
  llvm::FunctionCallee startswith_, endswith_, strcontains_, strlen_, regex_count_;

  // Per function.
  llvm::BasicBlock* entry_ = nullptr;
  llvm::Value *view_ = nullptr, *snapshot_ = nullptr, *host_ = nullptr, *row_ = nullptr;
  llvm::Value* arrays_[3] = {nullptr, nullptr, nullptr};
  std::unordered_map<uint32_t, llvm::Value*> col_values_, col_states_, offsets_;
  std::vector<llvm::Value*> elem_, loop_begin_;
  StringTablePlan tables_;
  std::vector<bool> expensive_;  // by node: calls a helper or loops over elements (scalar functions only)
  std::vector<uint32_t> canon_;  // by node: equal for structurally equal subtrees
  unsigned lanes_ = 1;           // rows per evaluation in the current function
  std::map<std::tuple<uint32_t, unsigned, llvm::BasicBlock*>, CV> emitted_;  // by (canonical node, lanes, block)
  std::map<std::tuple<int, llvm::Value*, uint64_t, llvm::BasicBlock*>, llvm::Value*> memo_;  // Memo()
  std::unordered_map<llvm::Value*, llvm::Value*> truth_;  // Bool() results: double -> i1
  std::unordered_map<uint32_t, CV> fused_;                // FuseLoops results, by canonical node
  std::unordered_map<llvm::BasicBlock*, llvm::BasicBlock*> idom_;           // a dominator of each block
  llvm::Value* tables_base_ = nullptr;     // HostContext::tables, hoisted
  std::unordered_map<uint32_t, llvm::Value*> table_bases_;
};

}  // namespace

StringTablePlan PlanStringTables(const Program& p) {
  StringTablePlan plan;
  plan.by_node.assign(p.nodes.size(), UINT32_MAX);
  std::map<StringTable, uint32_t> index;
  auto constant = [&](NodeId id) {
    const Node& n = p.node(id);
    return n.kind == NodeKind::Const && n.const_state == kKnown;
  };
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const Node& n = p.nodes[i];
    StringTable t;
    t.kind = n.kind;
    switch (n.kind) {
      case NodeKind::StartsWith:
      case NodeKind::EndsWith:
      case NodeKind::StrContains:
        if (constant(n.b)) {
          t.constant = static_cast<uint32_t>(p.node(n.b).number);
        } else if (constant(n.a)) {
          t.constant = static_cast<uint32_t>(p.node(n.a).number);
          t.constant_first = true;
        } else {
          continue;
        }
        break;
      case NodeKind::StrLength: break;
      case NodeKind::RegexCount: t.constant = n.payload; break;
      default: continue;
    }
    auto [it, added] = index.emplace(t, static_cast<uint32_t>(plan.tables.size()));
    if (added) plan.tables.push_back(t);
    plan.by_node[i] = it->second;
  }
  return plan;
}

double StringTableEntry(const StringTable& t, const HostContext& host, uint32_t id) {
  uint32_t a = t.constant_first ? t.constant : id, b = t.constant_first ? id : t.constant;
  switch (t.kind) {
    case NodeKind::StartsWith: return plinth_rules_startswith(&host, a, b);
    case NodeKind::EndsWith: return plinth_rules_endswith(&host, a, b);
    case NodeKind::StrContains: return plinth_rules_strcontains(&host, a, b);
    case NodeKind::StrLength: return plinth_rules_strlen(&host, id);
    case NodeKind::RegexCount: return plinth_rules_regex_count(&host, t.constant, id);
    default: return -1;
  }
}

namespace {
// By node: whether it or an operand (including the filter and value of its
// loop) satisfies `self`.
template <typename Self>
std::vector<bool> Propagate(const Program& p, Self self) {
  std::vector<bool> e(p.nodes.size(), false);
  // Operands, loop values and filters have smaller ids than their node, so
  // one forward pass suffices.
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const Node& n = p.nodes[i];
    bool x = self(n, i);
    for (NodeId c : {n.a, n.b, n.c}) x = x || (c.valid() && e[c.index]);
    for (uint32_t k = 0; k < n.arg_count; ++k) x = x || e[p.arg(n, k).index];
    if (n.payload != kNoLoop) {
      switch (n.kind) {
        case NodeKind::AllTrue:
        case NodeKind::AnyTrue:
        case NodeKind::Count:
        case NodeKind::Sum:
        case NodeKind::Contains:
          for (NodeId c : {p.loop(n.payload).value, p.loop(n.payload).filter}) {
            assert(!c.valid() || c.index < i);
            x = x || (c.valid() && e[c.index]);
          }
          break;
        default: break;
      }
    }
    e[i] = x;
  }
  return e;
}

bool IsHelperCall(const Node& n, size_t i, const StringTablePlan& tables) {
  switch (n.kind) {
    case NodeKind::StartsWith:
    case NodeKind::EndsWith:
    case NodeKind::StrContains:
    case NodeKind::StrLength:
    case NodeKind::RegexCount: return tables.by_node[i] == UINT32_MAX;
    default: return false;
  }
}
}  // namespace

std::vector<bool> HelperNodes(const Program& p, const StringTablePlan& tables) {
  return Propagate(p, [&](const Node& n, size_t i) { return IsHelperCall(n, i, tables); });
}

std::vector<bool> ExpensiveNodes(const Program& p, const StringTablePlan& tables) {
  return Propagate(p, [&](const Node& n, size_t i) {
    switch (n.kind) {
      case NodeKind::AllTrue:
      case NodeKind::AnyTrue:
      case NodeKind::Count:
      case NodeKind::Sum:
      case NodeKind::Contains:
        // length() of a plain list is a subtraction of offsets, not a loop.
        return n.payload != kNoLoop && !(n.kind == NodeKind::Count && CountsElements(p, p.loop(n.payload)));
      default: return IsHelperCall(n, i, tables);
    }
  });
}

std::vector<ColumnarGroup> ColumnarGroups(const Program& program) {
  // Rules without helper calls are evaluated kLanes rows at once: those
  // without element loops as straight-line code, the others with an element
  // loop over kLanes lists at once (VectorLoop). Rules that call helpers
  // branch per row and go into scalar groups of their own. Each kind has
  // groups of its own, so that straight-line groups stay one basic block.
  StringTablePlan tables = PlanStringTables(program);
  std::vector<bool> helpers = HelperNodes(program, tables);
  std::vector<bool> loops = ExpensiveNodes(program, tables);
  std::vector<ColumnarGroup> groups;
  ColumnarGroup kinds[3] = {{{}, true}, {{}, true}, {{}, false}};
  for (size_t r = 0; r < program.rules.size(); ++r) {
    NodeId root = program.rules[r].root;
    if (!root.valid()) continue;
    ColumnarGroup& g = kinds[helpers[root.index] ? 2 : loops[root.index] ? 1 : 0];
    g.rules.push_back(r);
    if (g.rules.size() == kColumnarGroup) {
      groups.push_back(g);
      g.rules.clear();
    }
  }
  for (ColumnarGroup& g : kinds) {
    if (!g.rules.empty()) groups.push_back(std::move(g));
  }
  return groups;
}

std::unique_ptr<llvm::Module> GenerateModule(const Program& program, unsigned part, llvm::LLVMContext& context,
                                             const std::string& prefix, const llvm::DataLayout& layout,
                                             const llvm::Triple& triple) {
  auto m = std::make_unique<llvm::Module>(prefix + "_part" + std::to_string(part), context);
  m->setDataLayout(layout);
  m->setTargetTriple(triple.getTriple());
  CodeGen gen(program, context, *m);
  if (program.mode == FieldMode::Columnar) {
    std::vector<ColumnarGroup> groups = ColumnarGroups(program);
    for (size_t g = part; g < groups.size(); g += kModuleParts) {
      gen.GroupFunction(groups[g], prefix + "_group" + std::to_string(g));
    }
  } else {
    for (size_t k = part; k * kSnapshotChunk < program.rules.size(); k += kModuleParts) {
      size_t first = k * kSnapshotChunk;
      gen.ChunkFunction(first, std::min(program.rules.size(), first + kSnapshotChunk), prefix + "_chunk" + std::to_string(k));
    }
  }
  return m;
}

}  // namespace plinth::rules
