#include "compiler/diag/diagnostic.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <tuple>

namespace plinth {

namespace {
const std::vector<DiagCodeInfo>& Table() {
  static const std::vector<DiagCodeInfo> table = {
#define DIAG(code, name, summary) {#code, #name, summary},
#include "compiler/diag/codes.def"
#undef DIAG
  };
  return table;
}
}  // namespace

const DiagCodeInfo& Info(DiagCode code) { return Table()[static_cast<size_t>(code)]; }

const std::vector<DiagCode>& AllDiagCodes() {
  static const std::vector<DiagCode> all = [] {
    std::vector<DiagCode> v;
    for (size_t i = 0; i < Table().size(); ++i) v.push_back(static_cast<DiagCode>(i));
    return v;
  }();
  return all;
}

Diagnostic& Diagnostics::Add(Diagnostic d) {
  std::lock_guard<std::mutex> lock(mu_);
  items_.push_back(std::move(d));
  return items_.back();
}

Diagnostic& Diagnostics::Error(DiagCode code, Range range, std::string message) {
  return Add(Diagnostic{code, Severity::Error, range, std::move(message), {}, {}});
}

Diagnostic& Diagnostics::Warning(DiagCode code, Range range, std::string message) {
  return Add(Diagnostic{code, Severity::Warning, range, std::move(message), {}, {}});
}

void Diagnostics::Append(Diagnostics&& other) {
  std::vector<Diagnostic> moved;
  {
    std::lock_guard<std::mutex> lock(other.mu_);
    moved = std::move(other.items_);
    other.items_.clear();
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& d : moved) items_.push_back(std::move(d));
}

size_t Diagnostics::error_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::count_if(items_.begin(), items_.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::Error; });
}

size_t Diagnostics::warning_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::count_if(items_.begin(), items_.end(),
                       [](const Diagnostic& d) { return d.severity == Severity::Warning; });
}

std::vector<Diagnostic> Diagnostics::Sorted(const SourceManager& sources) const {
  std::vector<Diagnostic> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out = items_;
  }
  auto key = [&](const Diagnostic& d) {
    std::string_view path = d.range.valid() ? std::string_view(sources.Get(d.range.file).path()) : "";
    return std::make_tuple(path, d.range.begin, static_cast<int>(d.code), std::string_view(d.message));
  };
  std::stable_sort(out.begin(), out.end(),
                   [&](const Diagnostic& a, const Diagnostic& b) { return key(a) < key(b); });
  out.erase(std::unique(out.begin(), out.end(),
                        [&](const Diagnostic& a, const Diagnostic& b) {
                          return a.code == b.code && a.range.file == b.range.file &&
                                 a.range.begin == b.range.begin && a.message == b.message;
                        }),
            out.end());
  return out;
}

namespace {

struct Style {
  bool on;
  std::string bold() const { return on ? "\x1b[1m" : ""; }
  std::string red() const { return on ? "\x1b[1;31m" : ""; }
  std::string magenta() const { return on ? "\x1b[1;35m" : ""; }
  std::string cyan() const { return on ? "\x1b[1;36m" : ""; }
  std::string green() const { return on ? "\x1b[1;32m" : ""; }
  std::string reset() const { return on ? "\x1b[0m" : ""; }
};

std::string Where(const SourceManager& sources, Range r) {
  const SourceFile& f = sources.Get(r.file);
  LineCol lc = f.Position(r.begin);
  return f.path() + ":" + std::to_string(lc.line) + ":" + std::to_string(lc.column);
}

// The source line with a caret and tildes under the range (first line only).
void Snippet(std::string& out, const SourceManager& sources, Range r, const Style& st) {
  const SourceFile& f = sources.Get(r.file);
  LineCol lc = f.Position(r.begin);
  std::string_view line = f.Line(lc.line);
  std::string num = std::to_string(lc.line);
  std::string gutter(num.size() + 2, ' ');
  if (f.confidential()) {
    // The line may hold a secret: show where, not what.
    out += " " + num + " | (line not shown: " + f.path() + " may hold secrets) column " + std::to_string(lc.column) +
           "\n";
    return;
  }
  // Tabs are shown as single spaces so the caret lines up.
  uint32_t line_start = f.LineStart(lc.line);
  uint32_t line_end = line_start + static_cast<uint32_t>(line.size());
  uint32_t end = std::min(std::max(r.end, r.begin + 1), std::max(line_end, r.begin + 1));
  uint32_t width = 1;
  if (end > r.begin && r.begin <= line_end) {
    width = std::max<uint32_t>(1, CountCodePoints(f.text().substr(r.begin, std::min(end, line_end) - r.begin)));
  }
  // Very long lines are shown as a window around the range.
  constexpr uint32_t kMaxShown = 120;
  uint32_t column = lc.column - 1;
  std::string_view visible = line;
  std::string prefix, suffix;
  if (CountCodePoints(line) > kMaxShown && line.size() == CountCodePoints(line)) {
    uint32_t from = column > 40 ? column - 40 : 0;
    uint32_t to = std::min<uint32_t>(static_cast<uint32_t>(line.size()), from + kMaxShown);
    visible = line.substr(from, to - from);
    if (from > 0) prefix = "...";
    if (to < line.size()) suffix = "...";
    column = column - from + static_cast<uint32_t>(prefix.size());
    width = std::min(width, to - (lc.column - 1) > 0 ? to - (lc.column - 1) : 1);
  }
  std::string shown = prefix + std::string(visible) + suffix;
  std::replace(shown.begin(), shown.end(), '\t', ' ');
  out += " " + num + " | " + shown + "\n";
  out += gutter + "| " + std::string(column, ' ') + st.green() + "^" + std::string(width > 0 ? width - 1 : 0, '~') +
         st.reset() + "\n";
}

}  // namespace

std::string RenderText(const std::vector<Diagnostic>& diags, const SourceManager& sources,
                       const RenderOptions& options) {
  Style st{options.color};
  std::string out;
  for (const Diagnostic& d : diags) {
    bool err = d.severity == Severity::Error;
    if (d.range.valid()) out += st.bold() + Where(sources, d.range) + ": " + st.reset();
    out += (err ? st.red() + "error" : st.magenta() + "warning");
    out += "[" + std::string(Info(d.code).code) + "]" + st.reset() + st.bold() + ": " + d.message +
           st.reset() + "\n";
    if (d.range.valid()) Snippet(out, sources, d.range, st);
    for (const DiagNote& n : d.notes) {
      if (n.range.valid()) {
        out += st.bold() + Where(sources, n.range) + ": " + st.reset() + st.cyan() + "note" + st.reset() +
               ": " + n.message + "\n";
        Snippet(out, sources, n.range, st);
      } else {
        out += st.cyan() + "note" + st.reset() + ": " + n.message + "\n";
      }
    }
    if (!d.help.empty()) out += st.cyan() + "help" + st.reset() + ": " + d.help + "\n";
  }
  return out;
}

namespace {
nlohmann::json JsonRange(const SourceManager& sources, Range r) {
  if (!r.valid()) return nullptr;
  const SourceFile& f = sources.Get(r.file);
  LineCol b = f.Position(r.begin), e = f.Position(r.end);
  return {{"file", f.path()},
          {"start", {{"line", b.line}, {"column", b.column}, {"byte", r.begin}}},
          {"end", {{"line", e.line}, {"column", e.column}, {"byte", r.end}}}};
}
}  // namespace

std::string RenderJson(const std::vector<Diagnostic>& diags, const SourceManager& sources) {
  nlohmann::json list = nlohmann::json::array();
  size_t errors = 0, warnings = 0;
  for (const Diagnostic& d : diags) {
    (d.severity == Severity::Error ? errors : warnings)++;
    nlohmann::json notes = nlohmann::json::array();
    for (const DiagNote& n : d.notes) notes.push_back({{"message", n.message}, {"range", JsonRange(sources, n.range)}});
    nlohmann::json j = {{"severity", d.severity == Severity::Error ? "error" : "warning"},
                        {"code", Info(d.code).code},
                        {"message", d.message},
                        {"range", JsonRange(sources, d.range)},
                        {"notes", notes}};
    j["help"] = d.help.empty() ? nlohmann::json(nullptr) : nlohmann::json(d.help);
    list.push_back(std::move(j));
  }
  nlohmann::json doc = {{"format_version", 1},
                        {"valid", errors == 0},
                        {"error_count", errors},
                        {"warning_count", warnings},
                        {"diagnostics", list}};
  return doc.dump(2) + "\n";
}

}  // namespace plinth
