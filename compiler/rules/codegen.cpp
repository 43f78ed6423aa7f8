// Rule IR -> LLVM IR. The semantics mirror interpreter.cpp exactly (see the
// comments there and docs/rules.md); the generated code evaluates operands
// without branches where the interpreter short-circuits, which gives the same
// results because rule evaluation has no side effects and never traps (host
// helpers are only called with known operands).
#include <unordered_map>

#include "compiler/rules/orc_jit.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/PassBuilder.h>

namespace plinth::rules {

namespace {

class CodeGen {
 public:
  CodeGen(const Program& p, llvm::LLVMContext& ctx, llvm::Module& m)
      : p_(p), ctx_(ctx), m_(m), b_(ctx), layout_(ColumnLayout::For(p.schema)) {
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
    // std::regex, so it is left unannotated.
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
    expensive_ = ExpensiveNodes(p);
  }

  // void name(const BatchView*, uint8_t* out, const HostContext*, uint64_t begin, uint64_t end, uint64_t stride)
  // One pass over rows [begin, end) evaluating every rule of the group; the
  // verdict of rule r for row i goes to out[r * stride + (i - begin)].
  void GroupFunction(const std::vector<size_t>& rules, const std::string& name) {
    auto* ft = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx_),
                                       {view_ty_->getPointerTo(), i8p_, i8p_, i64_, i64_, i64_}, false);
    llvm::Function* fn = Start(ft, name);
    view_ = fn->getArg(0);
    llvm::Value* out = fn->getArg(1);
    host_ = fn->getArg(2);
    llvm::Value* begin = fn->getArg(3);
    llvm::Value* end = fn->getArg(4);
    llvm::Value* stride = fn->getArg(5);
    fn->addParamAttr(0, llvm::Attribute::NoAlias);
    fn->addParamAttr(1, llvm::Attribute::NoAlias);

    auto* header = llvm::BasicBlock::Create(ctx_, "rows", fn);
    auto* body = llvm::BasicBlock::Create(ctx_, "row", fn);
    auto* done = llvm::BasicBlock::Create(ctx_, "done", fn);
    b_.SetInsertPoint(entry_);
    b_.CreateBr(header);
    std::vector<llvm::Value*> bases;  // out + r * stride, hoisted
    {
      llvm::IRBuilder<> eb(entry_->getTerminator());
      for (size_t r : rules) {
        bases.push_back(eb.CreateInBoundsGEP(i8_, out, eb.CreateMul(stride, llvm::ConstantInt::get(i64_, r))));
      }
    }
    b_.SetInsertPoint(header);
    llvm::PHINode* row = b_.CreatePHI(i64_, 2, "row");
    row->addIncoming(begin, entry_);
    b_.CreateCondBr(b_.CreateICmpULT(row, end), body, done);
    b_.SetInsertPoint(body);
    row_ = row;
    llvm::Value* i = b_.CreateSub(row, begin);
    for (size_t k = 0; k < rules.size(); ++k) {
      CV r = Emit(p_.rules[rules[k]].root);
      b_.CreateStore(ToVerdict(r), b_.CreateInBoundsGEP(i8_, bases[k], i));
    }
    llvm::Value* next = b_.CreateAdd(row, llvm::ConstantInt::get(i64_, 1), "", true, true);
    row->addIncoming(next, b_.GetInsertBlock());
    b_.CreateBr(header);
    b_.SetInsertPoint(done);
    b_.CreateRetVoid();
  }

  // void name(const double* snapshot, uint8_t* out, const HostContext*)
  void ChunkFunction(size_t first, size_t last, const std::string& name) {
    auto* ft = llvm::FunctionType::get(llvm::Type::getVoidTy(ctx_), {f64p_, i8p_, i8p_}, false);
    llvm::Function* fn = Start(ft, name);
    snapshot_ = fn->getArg(0);
    llvm::Value* out = fn->getArg(1);
    host_ = fn->getArg(2);
    fn->addParamAttr(1, llvm::Attribute::NoAlias);
    auto* body = llvm::BasicBlock::Create(ctx_, "body", fn);
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
    loop_begin_.assign(p_.loops.size(), nullptr);
    view_ = snapshot_ = host_ = row_ = nullptr;
    return fn;
  }

  // ---- constants and small helpers
  llvm::Constant* S(State s) { return llvm::ConstantInt::get(i8_, s); }
  llvm::Constant* F(double v) { return llvm::ConstantFP::get(f64_, v); }
  llvm::Value* Umax(llvm::Value* a, llvm::Value* b) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::umax, a, b); }
  llvm::Value* Umin(llvm::Value* a, llvm::Value* b) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::umin, a, b); }
  llvm::Value* Strict(llvm::Value* a, llvm::Value* b) { return Umin(Umax(a, b), S(kError)); }
  llvm::Value* Strict1(llvm::Value* a) { return Umin(a, S(kError)); }
  llvm::Value* Is(llvm::Value* s, State x) { return b_.CreateICmpEQ(s, S(x)); }
  llvm::Value* Bool(llvm::Value* i1) { return b_.CreateSelect(i1, F(1), F(0)); }
  llvm::Value* Zero(llvm::Value* v) { return b_.CreateFCmpOEQ(v, F(0)); }     // v == 0
  llvm::Value* NonZero(llvm::Value* v) { return b_.CreateFCmpUNE(v, F(0)); }  // v != 0

  llvm::Value* ToVerdict(CV r) {
    llvm::Value* known = b_.CreateZExt(NonZero(r.v), i8_);
    llvm::Value* other = b_.CreateSelect(Is(r.s, kUnknown), llvm::ConstantInt::get(i8_, 2), llvm::ConstantInt::get(i8_, 3));
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

  CV LoadColumn(uint32_t col, llvm::Value* index) {
    llvm::Value* v = b_.CreateLoad(f64_, b_.CreateInBoundsGEP(f64_, ColValues(col), index));
    llvm::Value* s = b_.CreateLoad(i8_, b_.CreateInBoundsGEP(i8_, ColStates(col), index));
    return {v, s};
  }

  // ---- expressions
  CV Emit(NodeId id) {
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
        return LoadColumn(col, elem_[n.payload]);
      }
      case NodeKind::LoopIndex:
        return {b_.CreateUIToFP(b_.CreateSub(elem_[n.payload], loop_begin_[n.payload]), f64_), S(kKnown)};
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
        if (expensive_[n.b.index] || expensive_[n.c.index]) return BranchingCond(n);
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
        return Helper(Strict1(a.s), [&] {
          return CV{b_.CreateCall(strlen_, {host_, b_.CreateFPToUI(a.v, i32_)}), S(kKnown)};
        });
      }
      case NodeKind::RegexCount: {
        CV a = Emit(n.a);
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
      return {b_.CreateSelect(dec, F(is_and ? 0 : 1), F(is_and ? 1 : 0)),
              b_.CreateSelect(dec, S(kKnown), Strict(a.s, b.s))};
    };
    bool ea = expensive_[n.a.index], eb = expensive_[n.b.index];
    if (!ea && !eb) return combine(Emit(n.a), Emit(n.b));
    NodeId first = ea && !eb ? n.b : n.a;
    NodeId second = first == n.a ? n.b : n.a;
    CV a = Emit(first);
    llvm::Function* fn = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* from = b_.GetInsertBlock();
    auto* rhs = llvm::BasicBlock::Create(ctx_, "rhs", fn);
    auto* join = llvm::BasicBlock::Create(ctx_, "logic", fn);
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
    llvm::Function* fn = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* from = b_.GetInsertBlock();
    auto* choose = llvm::BasicBlock::Create(ctx_, "cond.known", fn);
    auto* then = llvm::BasicBlock::Create(ctx_, "cond.then", fn);
    auto* other = llvm::BasicBlock::Create(ctx_, "cond.else", fn);
    auto* join = llvm::BasicBlock::Create(ctx_, "cond", fn);
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

  // Calls a host helper only when `s` is known: {call result} or {0, s}.
  template <typename Body>
  CV Helper(llvm::Value* s, Body body) {
    llvm::Function* fn = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* from = b_.GetInsertBlock();
    auto* call = llvm::BasicBlock::Create(ctx_, "call", fn);
    auto* join = llvm::BasicBlock::Create(ctx_, "join", fn);
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
        acc.count = b_.CreateAdd(acc.count, b_.CreateZExt(take, i64_));
        break;
      }
      case NodeKind::Sum: {
        acc.st = Umax(acc.st, b_.CreateSelect(skip, S(kKnown), Strict(f.s, value->s)));
        acc.total = b_.CreateSelect(take, b_.CreateFAdd(acc.total, value->v), acc.total);
        acc.count = b_.CreateAdd(acc.count, b_.CreateZExt(take, i64_));
        break;
      }
      default: break;
    }
    return acc;
  }

  CV Finish(const Node& n, Acc acc) {
    switch (n.kind) {
      case NodeKind::AllTrue:
        return {b_.CreateSelect(acc.dec, F(0), F(1)), b_.CreateSelect(acc.dec, S(kKnown), acc.st)};
      case NodeKind::AnyTrue:
      case NodeKind::Contains:
        return {b_.CreateSelect(acc.dec, F(1), F(0)), b_.CreateSelect(acc.dec, S(kKnown), acc.st)};
      case NodeKind::Count: return {b_.CreateUIToFP(acc.count, f64_), acc.st};
      case NodeKind::Sum: {
        llvm::Value* empty = b_.CreateAnd(Is(acc.st, kKnown), b_.CreateICmpEQ(acc.count, llvm::ConstantInt::get(i64_, 0)));
        return {acc.total, b_.CreateSelect(empty, S(kError), acc.st)};
      }
      default: return {F(0), S(kError)};
    }
  }

  CV Aggregate(const Node& n) {
    CV needle{F(0), S(kKnown)};
    if (n.kind == NodeKind::Contains) needle = Emit(n.a);
    CV yes{F(1), S(kKnown)};
    Acc acc{S(kKnown), llvm::ConstantInt::getFalse(ctx_), llvm::ConstantInt::get(i64_, 0), F(0)};
    if (n.payload == kNoLoop) {
      for (uint32_t i = 0; i < n.arg_count; ++i) {
        CV v = Emit(p_.arg(n, i));
        acc = Contribute(n, acc, yes, &v, needle);
      }
      return Finish(n, acc);
    }
    const Loop& loop = p_.loop(n.payload);
    uint32_t field = loop.field.index;
    llvm::Value* ls = b_.CreateLoad(i8_, b_.CreateInBoundsGEP(i8_, ColStates(layout_.base[field]), row_));
    llvm::Value* off = Offsets(field);
    llvm::Value* begin = b_.CreateZExt(b_.CreateLoad(i32_, b_.CreateInBoundsGEP(i32_, off, row_)), i64_);
    llvm::Value* end = b_.CreateZExt(
        b_.CreateLoad(i32_, b_.CreateInBoundsGEP(i32_, off, b_.CreateAdd(row_, llvm::ConstantInt::get(i64_, 1)))), i64_);
    llvm::Value* known = Is(ls, kKnown);
    end = b_.CreateSelect(known, end, begin);
    acc.st = b_.CreateSelect(known, S(kKnown),
                             b_.CreateSelect(Is(ls, kUnknown), S(kUnknown), S(loop.null_is_empty ? kKnown : kError)));
    if (n.kind == NodeKind::Count && CountsElements(p_, loop)) {
      acc.count = b_.CreateSub(end, begin);
      return Finish(n, acc);
    }

    llvm::Function* fn = b_.GetInsertBlock()->getParent();
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, "elems", fn);
    auto* body = llvm::BasicBlock::Create(ctx_, "elem", fn);
    auto* after = llvm::BasicBlock::Create(ctx_, "elems.done", fn);
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

  const Program& p_;
  llvm::LLVMContext& ctx_;
  llvm::Module& m_;
  llvm::IRBuilder<> b_;
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
  std::vector<bool> expensive_;  // by node: calls a helper or loops over elements
};

}  // namespace

std::vector<bool> ExpensiveNodes(const Program& p) {
  std::vector<bool> e(p.nodes.size(), false);
  // Operands have smaller ids than their node, so one forward pass suffices.
  for (size_t i = 0; i < p.nodes.size(); ++i) {
    const Node& n = p.nodes[i];
    bool x = false;
    switch (n.kind) {
      case NodeKind::StartsWith:
      case NodeKind::EndsWith:
      case NodeKind::StrContains:
      case NodeKind::StrLength:
      case NodeKind::RegexCount: x = true; break;
      case NodeKind::AllTrue:
      case NodeKind::AnyTrue:
      case NodeKind::Count:
      case NodeKind::Sum:
      case NodeKind::Contains:
        // length() of a plain list is a subtraction of offsets, not a loop.
        x = n.payload != kNoLoop && !(n.kind == NodeKind::Count && CountsElements(p, p.loop(n.payload)));
        break;
      default: break;
    }
    for (NodeId c : {n.a, n.b, n.c}) x = x || (c.valid() && e[c.index]);
    for (uint32_t k = 0; k < n.arg_count; ++k) x = x || e[p.arg(n, k).index];
    e[i] = x;
  }
  return e;
}

std::vector<std::vector<size_t>> ColumnarGroups(const Program& program) {
  // Rules without helper calls or element loops compile to straight-line code
  // that the loop vectoriser can handle together; the others would keep it
  // from vectorising, so they go into groups of their own.
  std::vector<bool> expensive = ExpensiveNodes(program);
  std::vector<std::vector<size_t>> groups;
  std::vector<size_t> simple, complex;
  auto flush = [&](std::vector<size_t>& g, bool force) {
    if (!g.empty() && (force || g.size() == kColumnarGroup)) {
      groups.push_back(std::move(g));
      g.clear();
    }
  };
  for (size_t r = 0; r < program.rules.size(); ++r) {
    NodeId root = program.rules[r].root;
    if (!root.valid()) continue;
    std::vector<size_t>& g = expensive[root.index] ? complex : simple;
    g.push_back(r);
    flush(g, false);
  }
  flush(simple, true);
  flush(complex, true);
  return groups;
}

std::unique_ptr<llvm::Module> GenerateModule(const Program& program, llvm::LLVMContext& context,
                                             const std::string& prefix, const llvm::DataLayout& layout,
                                             const llvm::Triple& triple) {
  auto m = std::make_unique<llvm::Module>(prefix, context);
  m->setDataLayout(layout);
  m->setTargetTriple(triple.getTriple());
  CodeGen gen(program, context, *m);
  if (program.mode == FieldMode::Columnar) {
    std::vector<std::vector<size_t>> groups = ColumnarGroups(program);
    for (size_t g = 0; g < groups.size(); ++g) gen.GroupFunction(groups[g], prefix + "_group" + std::to_string(g));
  } else {
    for (size_t first = 0, k = 0; first < program.rules.size(); first += kSnapshotChunk, ++k) {
      gen.ChunkFunction(first, std::min(program.rules.size(), first + kSnapshotChunk), prefix + "_chunk" + std::to_string(k));
    }
  }
  return m;
}

void OptimizeModule(llvm::Module& module, llvm::TargetMachine& tm) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  // O2, minus the passes that only multiply code size for rule loops:
  // unrolling and interleaving copy whole rule bodies (compile time grows
  // with them) for little gain on loops whose trip counts are unknown; the
  // SLP vectoriser costs 10-15% of the compile time of a 100-rule set
  // (A/B in one session: 550/466 ms with it, 516/404 ms without) for no
  // measurable run-time gain, as the loop vectoriser already covers the
  // straight-line groups (turning that one off too cost 2-6x in run time;
  // plinth-rules-bench).
  llvm::PipelineTuningOptions tuning;
  tuning.LoopUnrolling = false;
  tuning.LoopInterleaving = false;
  tuning.SLPVectorization = false;
  llvm::PassBuilder pb(&tm, tuning);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O2);
  mpm.run(module, mam);
}

}  // namespace plinth::rules
