// Types and values of the Plinth language.
//
// Values are immutable and cheap to copy (collections are shared). A value may
// be *unknown*: it has a type but its content is only known after apply (for
// example an attribute the provider computes). Unknowns are never guessed:
// every operation on an unknown yields an unknown of the result type, so type
// and unit errors are still found before anything runs.
//
// Units are part of the type: durations are stored in milliseconds, sizes in
// bytes, percentages as written (80% is 80). `30s + 5m` is a duration;
// `30s + 5GiB` is a unit error (see docs/language.md, "Units").
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plinth {

enum class TypeKind : uint8_t {
  Any,  // accepts every value; the type of null and of mixed lists
  Bool,
  Int,     // a Number whose value is integral; assignable to Number
  Number,  // 64-bit float
  String,
  Duration,
  Size,
  Percent,
  List,    // list(T)
  Map,     // map(T): string keys, one element type
  Object,  // object({name = T, ...}): fixed attribute names
};

class Type {
 public:
  Type() : Type(TypeKind::Any) {}
  static Type Any() { return Type(TypeKind::Any); }
  static Type Bool() { return Type(TypeKind::Bool); }
  static Type Int() { return Type(TypeKind::Int); }
  static Type Number() { return Type(TypeKind::Number); }
  static Type String() { return Type(TypeKind::String); }
  static Type Duration() { return Type(TypeKind::Duration); }
  static Type Size() { return Type(TypeKind::Size); }
  static Type Percent() { return Type(TypeKind::Percent); }
  static Type List(Type element);
  static Type Map(Type element);
  static Type Object(std::map<std::string, Type> attributes);

  TypeKind kind() const { return kind_; }
  bool is(TypeKind k) const { return kind_ == k; }
  bool IsNumeric() const { return kind_ == TypeKind::Int || kind_ == TypeKind::Number; }
  // Element type of List/Map (Any for others).
  const Type& element() const;
  // Attribute types of Object (empty for others).
  const std::map<std::string, Type>& attributes() const;

  std::string ToString() const;  // "list(string)", "object({a = int})"
  bool operator==(const Type& other) const;
  bool operator!=(const Type& other) const { return !(*this == other); }

 private:
  explicit Type(TypeKind k) : kind_(k) {}
  struct Detail;
  TypeKind kind_;
  std::shared_ptr<const Detail> detail_;
};

// True when a value of type `from` can be used where `to` is expected
// (int -> number, object -> map(T) when every attribute fits, any <-> all).
bool Assignable(const Type& from, const Type& to);
// The common type of two element types (for list literals, conditionals):
// equal types, int+number -> number, otherwise Any.
Type Unify(const Type& a, const Type& b);

class Value;
using ValueList = std::vector<Value>;
using ValueMap = std::map<std::string, Value>;  // sorted: output is deterministic

class Value {
 public:
  enum class Kind : uint8_t { Null, Bool, Number, String, Duration, Size, Percent, List, Object, Unknown };

  Value() = default;  // null
  static Value Null() { return Value(); }
  static Value Bool(bool b);
  static Value Number(double n);
  static Value String(std::string s);
  static Value Duration(double milliseconds);
  static Value Size(double bytes);
  static Value Percent(double percent);
  static Value List(ValueList items);
  static Value Object(ValueMap attributes);
  static Value Unknown(Type type);

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::Null; }
  bool is_unknown() const { return kind_ == Kind::Unknown; }
  // True when this value or anything inside it is unknown.
  bool ContainsUnknown() const;

  bool as_bool() const { return num_ != 0; }
  double as_number() const { return num_; }  // also the magnitude of units
  bool is_integer() const;
  const std::string& as_string() const { return *str_; }
  const ValueList& as_list() const { return *list_; }
  const ValueMap& as_object() const { return *object_; }
  const Type& unknown_type() const { return *type_; }

  // Sensitive values are shown as (sensitive) everywhere; derived values
  // inherit the mark.
  bool sensitive() const { return sensitive_; }
  // True when this value or anything inside it is sensitive.
  bool ContainsSensitive() const;
  Value WithSensitive(bool s = true) const {
    Value v = *this;
    v.sensitive_ = s;
    return v;
  }

  // The most precise type of this value: list literals get the unified
  // element type, objects get object({...}).
  Type type() const;

  // Structural equality; both must be known (callers handle unknowns).
  bool Equals(const Value& other) const { return Compare(other, false); }
  // The same value in every respect a reader can tell: kinds, contents,
  // unknowns of the same type and sensitive marks (an incremental check
  // keeps what depends on a value when the value is Identical to the last).
  bool Identical(const Value& other) const { return Compare(other, true); }

  // Plinth source syntax: "a", 30s, 10GiB, [1, 2], { a = 1 }. Unknowns print
  // as (known after apply), sensitive values as (sensitive) unless `reveal`.
  std::string ToString(bool reveal = false) const;

 private:
  bool Compare(const Value& other, bool identical) const;
  Kind kind_ = Kind::Null;
  bool sensitive_ = false;
  double num_ = 0;
  std::shared_ptr<const std::string> str_;
  std::shared_ptr<const ValueList> list_;
  std::shared_ptr<const ValueMap> object_;
  std::shared_ptr<const Type> type_;
};

// ---- units

enum class UnitDimension : uint8_t { Duration, Size, Percent };
struct UnitInfo {
  std::string_view suffix;  // "ms", "GiB", "%"
  UnitDimension dimension;
  double factor;  // to the canonical unit (ms, bytes, percent)
};
// Exact, case-sensitive lookup ("GiB", not "gib"). Null when unknown.
const UnitInfo* FindUnit(std::string_view suffix);
const std::vector<UnitInfo>& AllUnits();
Value MakeUnitValue(UnitDimension dim, double canonical);

// Canonical text of unit values: the largest unit that divides exactly.
std::string FormatDuration(double ms);
std::string FormatSize(double bytes);
std::string FormatNumber(double n);

// JSON-like quoting with Plinth escapes (\n \t \" \\ and $${).
std::string QuoteString(std::string_view s);

// An object key as Plinth source writes it: bare when it is an identifier
// that is not a keyword (`name`), quoted otherwise (`"a-b"`, `"true"`, `""`),
// so printed objects parse back to the same keys.
std::string FormatObjectKey(std::string_view key);

}  // namespace plinth
