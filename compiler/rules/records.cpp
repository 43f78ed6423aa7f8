#include "compiler/rules/records.h"

#include <cassert>
#include <cmath>

namespace plinth::rules {

RecordBatch::RecordBatch(const RuleSchema& schema, std::shared_ptr<StringPool> strings)
    : schema_(schema), strings_(std::move(strings)), layout_(ColumnLayout::For(schema_)) {
  values_.resize(layout_.column_count);
  states_.resize(layout_.column_count);
  offsets_.resize(schema_.size());
  for (size_t f = 0; f < schema_.size(); ++f) {
    if (schema_.fields()[f].shape != FieldShape::Scalar) offsets_[f].push_back(0);
  }
}

void RecordBatch::Reserve(size_t rows) {
  for (size_t f = 0; f < schema_.size(); ++f) {
    uint32_t base = layout_.base[f];
    values_[base].reserve(rows);
    states_[base].reserve(rows);
    if (!offsets_[f].empty()) offsets_[f].reserve(rows + 1);
  }
}

size_t RecordBatch::AddRow() {
  for (size_t f = 0; f < schema_.size(); ++f) {
    uint32_t base = layout_.base[f];
    values_[base].push_back(0);
    states_[base].push_back(kNull);
    if (!offsets_[f].empty()) offsets_[f].push_back(offsets_[f].back());
  }
  return rows_++;
}

void RecordBatch::Put(uint32_t column, size_t index, Cell c) {
  // Inputs are known, unknown or null. A known NaN, or a state that only
  // evaluation produces, is stored as unknown: it never makes a rule pass.
  if ((c.state == kKnown && std::isnan(c.value)) || (c.state != kKnown && c.state != kNull)) c = Cell::Unknown();
  values_[column][index] = c.state == kKnown ? c.value : 0;
  states_[column][index] = c.state;
}

void RecordBatch::Set(size_t row, FieldId field, Cell cell) {
  assert(row < rows_ && schema_.field(field).shape == FieldShape::Scalar);
  Put(layout_.base[field.index], row, cell);
}

void RecordBatch::SetListState(FieldId field, State state) {
  assert(rows_ > 0 && schema_.field(field).shape != FieldShape::Scalar);
  assert(state == kKnown || state == kUnknown || state == kNull);
  uint32_t base = layout_.base[field.index];
  states_[base][rows_ - 1] = state;
  if (state != kKnown) {
    // Drop elements appended before: an unknown or null list has none.
    std::vector<uint32_t>& off = offsets_[field.index];
    uint32_t begin = off[rows_ - 1];
    off[rows_] = begin;
    const FieldSpec& spec = schema_.field(field);
    size_t cols = spec.shape == FieldShape::List ? 1 : spec.attributes.size();
    for (size_t k = 0; k < cols; ++k) {
      values_[base + 1 + k].resize(begin);
      states_[base + 1 + k].resize(begin);
    }
  }
}

void RecordBatch::AppendElement(FieldId field, Cell cell) {
  assert(rows_ > 0 && schema_.field(field).shape == FieldShape::List);
  uint32_t base = layout_.base[field.index];
  states_[base][rows_ - 1] = kKnown;
  values_[base + 1].push_back(0);
  states_[base + 1].push_back(kNull);
  Put(base + 1, values_[base + 1].size() - 1, cell);
  offsets_[field.index][rows_] += 1;
}

void RecordBatch::AppendObject(FieldId field, std::span<const Cell> attributes) {
  const FieldSpec& spec = schema_.field(field);
  assert(rows_ > 0 && spec.shape == FieldShape::ObjectList && attributes.size() == spec.attributes.size());
  uint32_t base = layout_.base[field.index];
  states_[base][rows_ - 1] = kKnown;
  for (size_t k = 0; k < spec.attributes.size(); ++k) {
    values_[base + 1 + k].push_back(0);
    states_[base + 1 + k].push_back(kNull);
    Put(base + 1 + static_cast<uint32_t>(k), values_[base + 1 + k].size() - 1, attributes[k]);
  }
  offsets_[field.index][rows_] += 1;
}

Cell RecordBatch::FromValue(const Value& v, ScalarType type, const std::string& path, std::string* error, bool* ok) {
  if (v.is_unknown()) return Cell::Unknown();
  if (v.is_null()) return Cell::Null();
  bool fits = false;
  switch (type) {
    case ScalarType::Bool: fits = v.kind() == Value::Kind::Bool; break;
    case ScalarType::Number: fits = v.kind() == Value::Kind::Number; break;
    case ScalarType::Duration: fits = v.kind() == Value::Kind::Duration; break;
    case ScalarType::Size: fits = v.kind() == Value::Kind::Size; break;
    case ScalarType::Percent: fits = v.kind() == Value::Kind::Percent; break;
    case ScalarType::String: fits = v.kind() == Value::Kind::String; break;
  }
  if (!fits) {
    if (*ok && error) {
      *error = "'" + path + "' should be " + DescribeType(VType::Of(type)) + ", but the record has " +
               (v.kind() == Value::Kind::List ? std::string("a list") : v.type().ToString());
    }
    *ok = false;
    return Cell::Unknown();
  }
  if (type == ScalarType::String) return String(v.as_string());
  if (type == ScalarType::Bool) return Cell::Bool(v.as_bool());
  return Cell::Number(v.as_number());
}

bool RecordBatch::AddValues(const std::map<std::string, Value>& roots, std::string* error) {
  size_t row = AddRow();
  bool ok = true;
  for (size_t f = 0; f < schema_.size(); ++f) {
    const FieldSpec& spec = schema_.fields()[f];
    FieldId id{static_cast<uint32_t>(f)};
    // Walk the path.
    size_t dot = spec.path.find('.');
    auto it = roots.find(spec.path.substr(0, dot));
    Value v = it == roots.end() ? Value::Null() : it->second;
    while (dot != std::string::npos && !v.is_null() && !v.is_unknown()) {
      size_t next = spec.path.find('.', dot + 1);
      std::string name = spec.path.substr(dot + 1, next == std::string::npos ? std::string::npos : next - dot - 1);
      if (v.kind() != Value::Kind::Object) {
        if (ok && error) {
          std::string prefix = spec.path.substr(0, dot);
          *error = "'" + prefix + "' should be an object, but the record has " + v.type().ToString();
        }
        ok = false;
        v = Value::Unknown(Type::Any());
        break;
      }
      auto a = v.as_object().find(name);
      v = a == v.as_object().end() ? Value::Null() : a->second;
      dot = next;
    }
    if (spec.shape == FieldShape::Scalar) {
      Set(row, id, FromValue(v, spec.type, spec.path, error, &ok));
      continue;
    }
    if (v.is_unknown()) {
      SetListState(id, kUnknown);
      continue;
    }
    if (v.is_null()) {
      SetListState(id, kNull);
      continue;
    }
    if (v.kind() != Value::Kind::List) {
      if (ok && error) *error = "'" + spec.path + "' should be a list, but the record has " + v.type().ToString();
      ok = false;
      SetListState(id, kUnknown);
      continue;
    }
    SetListState(id, kKnown);
    std::vector<Cell> attrs(spec.attributes.size());
    for (const Value& e : v.as_list()) {
      if (spec.shape == FieldShape::List) {
        AppendElement(id, FromValue(e, spec.type, spec.path + "[*]", error, &ok));
        continue;
      }
      for (size_t k = 0; k < spec.attributes.size(); ++k) {
        const ObjectAttribute& a = spec.attributes[k];
        if (e.is_unknown()) {
          attrs[k] = Cell::Unknown();
        } else if (e.kind() != Value::Kind::Object) {
          if (ok && error && !e.is_null()) *error = "elements of '" + spec.path + "' should be objects";
          ok = ok && e.is_null();
          attrs[k] = e.is_null() ? Cell::Null() : Cell::Unknown();
        } else {
          auto x = e.as_object().find(a.name);
          attrs[k] = x == e.as_object().end() ? Cell::Null()
                                              : FromValue(x->second, a.type, spec.path + "[*]." + a.name, error, &ok);
        }
      }
      AppendObject(id, attrs);
    }
  }
  return ok;
}

RecordBatch::OwnedView RecordBatch::View() const {
  OwnedView v;
  v.values.resize(values_.size());
  v.states.resize(states_.size());
  v.offsets.resize(offsets_.size());
  for (size_t c = 0; c < values_.size(); ++c) {
    v.values[c] = values_[c].data();
    v.states[c] = states_[c].data();
  }
  for (size_t f = 0; f < offsets_.size(); ++f) v.offsets[f] = offsets_[f].empty() ? nullptr : offsets_[f].data();
  v.view = BatchView{v.values.data(), v.states.data(), v.offsets.data(), rows_};
  return v;
}

}  // namespace plinth::rules
