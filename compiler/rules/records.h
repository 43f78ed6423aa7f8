// Records for policies, in the columnar layout rules read (ir.h, ColumnLayout).
//
// A RecordBatch holds many records of one schema: per field a column of
// doubles (numbers in canonical units, bools as 0/1, strings as interned ids)
// plus a state byte per value (known, unknown until apply, or null/absent).
// Lists are stored as concatenated elements with per-record offsets.
//
// Building: AddRow() appends a record whose fields are all null; set scalar
// fields of any row; list elements can only be appended to the last row.
// A known NaN is stored as unknown. The batch is not thread-safe while it is
// built; once built, any number of threads may evaluate rules over it.
#pragma once

#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/rules/ir.h"
#include "compiler/types/types.h"

namespace plinth::rules {

struct Cell {
  double value = 0;
  State state = kNull;
  static Cell Number(double v) { return {v, kKnown}; }
  static Cell Bool(bool b) { return {b ? 1.0 : 0.0, kKnown}; }
  static Cell Unknown() { return {0, kUnknown}; }
  static Cell Null() { return {0, kNull}; }
};

class RecordBatch {
 public:
  // `strings` must be the pool the rules were compiled with.
  RecordBatch(const RuleSchema& schema, std::shared_ptr<StringPool> strings);

  size_t rows() const { return rows_; }
  const RuleSchema& schema() const { return schema_; }
  const std::shared_ptr<StringPool>& strings() const { return strings_; }

  size_t AddRow();
  void Reserve(size_t rows);
  Cell String(std::string_view s) { return {static_cast<double>(strings_->Intern(s)), kKnown}; }

  // A scalar field of any row.
  void Set(size_t row, FieldId field, Cell cell);
  // The state of a list field of the last row: kUnknown, kNull, or kKnown
  // (an empty list, to which elements may be appended).
  void SetListState(FieldId field, State state);
  // An element of a list of scalars (last row); makes the list known.
  void AppendElement(FieldId field, Cell cell);
  // An element of a list of objects (last row): one cell per attribute, in
  // the schema's attribute order (sorted by name); makes the list known.
  void AppendObject(FieldId field, std::span<const Cell> attributes);

  // Adds one record from Plinth values: each field path's first segment names
  // a root in `roots` ("self"), the rest are attributes. A missing root or
  // attribute is null; an unknown anywhere on the path is unknown. Returns
  // false and describes the first problem in `error` when a value does not
  // have the field's type (that field is then stored as unknown, so no rule
  // passes on it); the row is added either way.
  bool AddValues(const std::map<std::string, Value>& roots, std::string* error);

  // The view generated code and the interpreter read: pointer arrays into
  // the batch, valid until the batch is changed. Each call builds its own, so
  // threads may take views concurrently.
  struct OwnedView {
    std::vector<const double*> values;
    std::vector<const uint8_t*> states;
    std::vector<const uint32_t*> offsets;
    BatchView view{};
  };
  OwnedView View() const;
  const ColumnLayout& layout() const { return layout_; }

 private:
  Cell FromValue(const Value& v, ScalarType type, const std::string& path, std::string* error, bool* ok);
  void Put(uint32_t column, size_t index, Cell c);

  RuleSchema schema_;
  std::shared_ptr<StringPool> strings_;
  ColumnLayout layout_;
  size_t rows_ = 0;
  std::vector<std::vector<double>> values_;  // by column
  std::vector<std::vector<uint8_t>> states_;
  std::vector<std::vector<uint32_t>> offsets_;  // by field (empty for scalars)
};

}  // namespace plinth::rules
