#include "compiler/types/types.h"

#include <charconv>
#include <cmath>
#include <cstdio>

namespace plinth {

struct Type::Detail {
  Type element;
  std::map<std::string, Type> attributes;
};

Type Type::List(Type element) {
  Type t(TypeKind::List);
  t.detail_ = std::make_shared<Detail>(Detail{std::move(element), {}});
  return t;
}

Type Type::Map(Type element) {
  Type t(TypeKind::Map);
  t.detail_ = std::make_shared<Detail>(Detail{std::move(element), {}});
  return t;
}

Type Type::Object(std::map<std::string, Type> attributes) {
  Type t(TypeKind::Object);
  t.detail_ = std::make_shared<Detail>(Detail{Type::Any(), std::move(attributes)});
  return t;
}

const Type& Type::element() const {
  static const Type any;
  return detail_ ? detail_->element : any;
}

const std::map<std::string, Type>& Type::attributes() const {
  static const std::map<std::string, Type> none;
  return detail_ ? detail_->attributes : none;
}

std::string Type::ToString() const {
  switch (kind_) {
    case TypeKind::Any: return "any";
    case TypeKind::Bool: return "bool";
    case TypeKind::Int: return "int";
    case TypeKind::Number: return "number";
    case TypeKind::String: return "string";
    case TypeKind::Duration: return "duration";
    case TypeKind::Size: return "size";
    case TypeKind::Percent: return "percent";
    case TypeKind::List: return "list(" + element().ToString() + ")";
    case TypeKind::Map: return "map(" + element().ToString() + ")";
    case TypeKind::Object: {
      std::string s = "object({";
      bool first = true;
      for (const auto& [name, t] : attributes()) {
        s += (first ? "" : ", ") + name + " = " + t.ToString();
        first = false;
      }
      return s + "})";
    }
  }
  return "any";
}

bool Type::operator==(const Type& o) const {
  if (kind_ != o.kind_) return false;
  switch (kind_) {
    case TypeKind::List:
    case TypeKind::Map: return element() == o.element();
    case TypeKind::Object: return attributes() == o.attributes();
    default: return true;
  }
}

bool Assignable(const Type& from, const Type& to) {
  if (to.is(TypeKind::Any) || from.is(TypeKind::Any)) return true;
  if (from.kind() == to.kind()) {
    switch (to.kind()) {
      case TypeKind::List:
      case TypeKind::Map: return Assignable(from.element(), to.element());
      case TypeKind::Object: {
        for (const auto& [name, t] : to.attributes()) {
          auto it = from.attributes().find(name);
          if (it != from.attributes().end() && !Assignable(it->second, t)) return false;
        }
        for (const auto& [name, t] : from.attributes()) {
          if (!to.attributes().count(name)) return false;
        }
        return true;
      }
      default: return true;
    }
  }
  if (from.is(TypeKind::Int) && to.is(TypeKind::Number)) return true;
  if (from.is(TypeKind::Object) && to.is(TypeKind::Map)) {
    for (const auto& [name, t] : from.attributes()) {
      if (!Assignable(t, to.element())) return false;
    }
    return true;
  }
  return false;
}

Type Unify(const Type& a, const Type& b) {
  if (a == b) return a;
  if (a.IsNumeric() && b.IsNumeric()) return Type::Number();
  if (a.kind() == b.kind() && (a.is(TypeKind::List) || a.is(TypeKind::Map))) {
    Type e = Unify(a.element(), b.element());
    return a.is(TypeKind::List) ? Type::List(e) : Type::Map(e);
  }
  return Type::Any();
}

// ---------------------------------------------------------------- values

Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::Bool;
  v.num_ = b ? 1 : 0;
  return v;
}

Value Value::Number(double n) {
  Value v;
  v.kind_ = Kind::Number;
  v.num_ = n;
  return v;
}

Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::String;
  v.str_ = std::make_shared<const std::string>(std::move(s));
  return v;
}

Value Value::Duration(double ms) {
  Value v = Number(ms);
  v.kind_ = Kind::Duration;
  return v;
}

Value Value::Size(double bytes) {
  Value v = Number(bytes);
  v.kind_ = Kind::Size;
  return v;
}

Value Value::Percent(double p) {
  Value v = Number(p);
  v.kind_ = Kind::Percent;
  return v;
}

Value Value::List(ValueList items) {
  Value v;
  v.kind_ = Kind::List;
  v.list_ = std::make_shared<const ValueList>(std::move(items));
  return v;
}

Value Value::Object(ValueMap attributes) {
  Value v;
  v.kind_ = Kind::Object;
  v.object_ = std::make_shared<const ValueMap>(std::move(attributes));
  return v;
}

Value Value::Unknown(Type type) {
  Value v;
  v.kind_ = Kind::Unknown;
  v.type_ = std::make_shared<const Type>(std::move(type));
  return v;
}

bool Value::is_integer() const {
  return kind_ == Kind::Number && std::isfinite(num_) && std::floor(num_) == num_;
}

bool Value::ContainsUnknown() const {
  switch (kind_) {
    case Kind::Unknown: return true;
    case Kind::List:
      for (const Value& v : *list_) {
        if (v.ContainsUnknown()) return true;
      }
      return false;
    case Kind::Object:
      for (const auto& [k, v] : *object_) {
        if (v.ContainsUnknown()) return true;
      }
      return false;
    default: return false;
  }
}

bool Value::ContainsSensitive() const {
  if (sensitive_) return true;
  if (kind_ == Kind::List) {
    for (const Value& v : *list_) {
      if (v.ContainsSensitive()) return true;
    }
  } else if (kind_ == Kind::Object) {
    for (const auto& [k, v] : *object_) {
      if (v.ContainsSensitive()) return true;
    }
  }
  return false;
}

Type Value::type() const {
  switch (kind_) {
    case Kind::Null: return Type::Any();
    case Kind::Bool: return Type::Bool();
    case Kind::Number: return is_integer() ? Type::Int() : Type::Number();
    case Kind::String: return Type::String();
    case Kind::Duration: return Type::Duration();
    case Kind::Size: return Type::Size();
    case Kind::Percent: return Type::Percent();
    case Kind::Unknown: return *type_;
    case Kind::List: {
      if (list_->empty()) return Type::List(Type::Any());
      Type e = (*list_)[0].type();
      for (size_t i = 1; i < list_->size() && !e.is(TypeKind::Any); ++i) e = Unify(e, (*list_)[i].type());
      return Type::List(e);
    }
    case Kind::Object: {
      std::map<std::string, Type> attrs;
      for (const auto& [k, v] : *object_) attrs.emplace(k, v.type());
      return Type::Object(std::move(attrs));
    }
  }
  return Type::Any();
}

// Equals (`identical` false): known values, unknowns never equal. Identical
// (`identical` true): also sensitive marks, unknowns of the same type, shared
// contents recognised without a walk.
bool Value::Compare(const Value& o, bool identical) const {
  if (kind_ != o.kind_ || (identical && sensitive_ != o.sensitive_)) return false;
  switch (kind_) {
    case Kind::Null: return true;
    case Kind::Bool:
    case Kind::Number:
    case Kind::Duration:
    case Kind::Size:
    case Kind::Percent: return num_ == o.num_ || (identical && std::isnan(num_) && std::isnan(o.num_));
    case Kind::String: return (identical && str_ == o.str_) || *str_ == *o.str_;
    case Kind::List: {
      if (identical && list_ == o.list_) return true;
      if (list_->size() != o.list_->size()) return false;
      for (size_t i = 0; i < list_->size(); ++i) {
        if (!(*list_)[i].Compare((*o.list_)[i], identical)) return false;
      }
      return true;
    }
    case Kind::Object: {
      if (identical && object_ == o.object_) return true;
      if (object_->size() != o.object_->size()) return false;
      auto a = object_->begin();
      auto b = o.object_->begin();
      for (; a != object_->end(); ++a, ++b) {
        if (a->first != b->first || !a->second.Compare(b->second, identical)) return false;
      }
      return true;
    }
    case Kind::Unknown: return identical && (type_ == o.type_ || *type_ == *o.type_);
  }
  return false;
}

std::string FormatNumber(double n) {
  if (std::isnan(n)) return "nan";
  if (std::isinf(n)) return n > 0 ? "inf" : "-inf";
  if (std::floor(n) == n && std::fabs(n) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.0f", n);
    return buf;
  }
  // The shortest text that reads back as the same double (0.1, 1e+15).
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
  return ec == std::errc() ? std::string(buf, end) : std::string("0");
}

namespace {
// The number of a unit literal: UNIT_NUMBER has no exponent, so never
// scientific notation (1e+21 bytes is 1000000000000000000000B).
std::string UnitNumber(double n) {
  char buf[400];
  auto [end, ec] = std::floor(n) == n ? std::to_chars(buf, buf + sizeof buf, n, std::chars_format::fixed, 0)
                                      : std::to_chars(buf, buf + sizeof buf, n, std::chars_format::fixed);
  return ec == std::errc() ? std::string(buf, end) : FormatNumber(n);
}

std::string FormatWithUnits(double v, UnitDimension dim, std::initializer_list<std::string_view> order) {
  if (v != 0 && std::floor(v) == v) {
    for (std::string_view suffix : order) {
      const UnitInfo* u = FindUnit(suffix);
      if (u && u->dimension == dim && std::fmod(v, u->factor) == 0) return UnitNumber(v / u->factor) + std::string(suffix);
    }
  }
  // Not a whole multiple of any unit: show it in the smallest one.
  return UnitNumber(v) + std::string(*(order.end() - 1));
}
}  // namespace

std::string FormatDuration(double ms) {
  return FormatWithUnits(ms, UnitDimension::Duration, {"w", "d", "h", "m", "s", "ms"});
}

std::string FormatSize(double bytes) {
  return FormatWithUnits(bytes, UnitDimension::Size,
                         {"PiB", "PB", "TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "KB", "B"});
}

std::string QuoteString(std::string_view s) {
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '$':
        if (i + 1 < s.size() && s[i + 1] == '{') {
          out += "$$";
        } else {
          out += '$';
        }
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string FormatObjectKey(std::string_view key) {
  // IDENT in grammar/Plinth.g4; the keywords lex as their own tokens.
  static constexpr std::string_view kKeywords[] = {"true", "false", "null", "for", "in", "if"};
  bool ident = !key.empty() && (std::isalpha(static_cast<unsigned char>(key[0])) || key[0] == '_');
  for (char c : key) ident = ident && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
  for (std::string_view kw : kKeywords) ident = ident && key != kw;
  return ident ? std::string(key) : QuoteString(key);
}

std::string Value::ToString(bool reveal) const {
  if (sensitive_ && !reveal) return "(sensitive)";
  switch (kind_) {
    case Kind::Null: return "null";
    case Kind::Bool: return num_ != 0 ? "true" : "false";
    case Kind::Number: return FormatNumber(num_);
    case Kind::String: return QuoteString(*str_);
    case Kind::Duration: return FormatDuration(num_);
    case Kind::Size: return FormatSize(num_);
    case Kind::Percent: return UnitNumber(num_) + "%";
    case Kind::Unknown: return "(known after apply)";
    case Kind::List: {
      std::string s = "[";
      for (size_t i = 0; i < list_->size(); ++i) s += (i ? ", " : "") + (*list_)[i].ToString(reveal);
      return s + "]";
    }
    case Kind::Object: {
      if (object_->empty()) return "{}";
      std::string s = "{ ";
      bool first = true;
      for (const auto& [k, v] : *object_) {
        s += (first ? "" : ", ");
        s += FormatObjectKey(k) + " = " + v.ToString(reveal);
        first = false;
      }
      return s + " }";
    }
  }
  return "null";
}

// ------------------------------------------------------------------ units

const std::vector<UnitInfo>& AllUnits() {
  static const std::vector<UnitInfo> units = {
      {"ms", UnitDimension::Duration, 1},
      {"s", UnitDimension::Duration, 1000},
      {"m", UnitDimension::Duration, 60'000},
      {"h", UnitDimension::Duration, 3'600'000},
      {"d", UnitDimension::Duration, 86'400'000},
      {"w", UnitDimension::Duration, 604'800'000},
      {"B", UnitDimension::Size, 1},
      {"KB", UnitDimension::Size, 1e3},
      {"MB", UnitDimension::Size, 1e6},
      {"GB", UnitDimension::Size, 1e9},
      {"TB", UnitDimension::Size, 1e12},
      {"PB", UnitDimension::Size, 1e15},
      {"KiB", UnitDimension::Size, 1024.0},
      {"MiB", UnitDimension::Size, 1024.0 * 1024},
      {"GiB", UnitDimension::Size, 1024.0 * 1024 * 1024},
      {"TiB", UnitDimension::Size, 1024.0 * 1024 * 1024 * 1024},
      {"PiB", UnitDimension::Size, 1024.0 * 1024 * 1024 * 1024 * 1024},
      {"%", UnitDimension::Percent, 1},
  };
  return units;
}

const UnitInfo* FindUnit(std::string_view suffix) {
  for (const UnitInfo& u : AllUnits()) {
    if (u.suffix == suffix) return &u;
  }
  return nullptr;
}

Value MakeUnitValue(UnitDimension dim, double canonical) {
  switch (dim) {
    case UnitDimension::Duration: return Value::Duration(canonical);
    case UnitDimension::Size: return Value::Size(canonical);
    case UnitDimension::Percent: return Value::Percent(canonical);
  }
  return Value::Null();
}

}  // namespace plinth
