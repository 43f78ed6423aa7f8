#include "compiler/check/backend_block.h"

#include <cctype>

namespace plinth {
namespace {

// Whether a postgres:// URL carries a password (user:password@host).
bool HasPassword(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url.find("password=") != std::string::npos;
  size_t start = scheme + 3;
  size_t end = url.find_first_of("/?", start);
  size_t at = url.rfind('@', end == std::string::npos ? std::string::npos : end);
  if (at != std::string::npos && at >= start && url.find(':', start) < at) return true;
  return url.find("password=") != std::string::npos;
}

}  // namespace

std::optional<std::string> LiteralString(const ast::Expr& e) {
  if (e.kind == ast::ExprKind::Literal) {
    const Value& v = e.As<ast::Literal>().value;
    if (v.kind() == Value::Kind::String) return v.as_string();
    return std::nullopt;
  }
  if (e.kind != ast::ExprKind::Template) return std::nullopt;
  std::string text;
  for (const ast::TemplatePart& part : e.As<ast::Template>().parts) {
    if (part.expr) return std::nullopt;
    text += part.text;
  }
  return text;
}

std::string BackendSetting::BackendUrl() const {
  if (schema.empty()) return url;
  return url + (url.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema;
}

std::variant<BackendSetting, BackendProblem> ReadBackendBlock(const ast::Block& b) {
  if (b.labels.size() != 1 || b.labels[0].value != "postgres") {
    return BackendProblem{DiagCode::InvalidLabels, b.labels.empty() ? b.type_range : b.labels[0].range,
                          "a backend block takes one label, the backend: \"postgres\"",
                          "write: backend \"postgres\" { url = \"postgres://USER@HOST/DB\" } (the default, a SQLite "
                          "file in the workspace directory, needs no block)"};
  }
  for (const ast::Block& nested : b.body.blocks) {
    return BackendProblem{DiagCode::UnknownAttribute, nested.type_range,
                          "a backend block holds only the attributes url and schema", "remove the block"};
  }
  BackendSetting out;
  bool has_url = false;
  for (const ast::Attribute& a : b.body.attributes) {
    if (a.name != "url" && a.name != "schema") {
      return BackendProblem{DiagCode::UnknownAttribute, a.name_range,
                            "a backend block has no attribute '" + a.name + "'",
                            "its attributes are url and schema; a password goes in PGPASSWORD or ~/.pgpass, TLS "
                            "settings in the URL (sslmode=verify-full&sslrootcert=FILE)"};
    }
    std::optional<std::string> text = LiteralString(*a.value);
    if (!text) {
      return BackendProblem{DiagCode::TypeMismatch, a.value->range,
                            "the backend's " + a.name + " must be a literal string",
                            "the state is opened before anything is evaluated: write the text itself, or leave "
                            "the block out and set PLINTH_BACKEND"};
    }
    if (a.name == "url") {
      has_url = true;
      out.url = *text;
      if (out.url.rfind("postgres://", 0) != 0 && out.url.rfind("postgresql://", 0) != 0) {
        return BackendProblem{DiagCode::TypeMismatch, a.value->range,
                              "the backend's url must be a PostgreSQL URL", "write: postgres://USER@HOST:5432/DB"};
      }
      if (HasPassword(out.url)) {
        return BackendProblem{DiagCode::TypeMismatch, a.value->range,
                              "the backend's url holds a password, which would be kept in git with this file",
                              "remove it from the URL and set PGPASSWORD (or a ~/.pgpass line) where Plinth runs"};
      }
      if (out.url.find("schema=") != std::string::npos) {
        return BackendProblem{DiagCode::TypeMismatch, a.value->range,
                              "the backend's url sets schema=; use the schema attribute", "write: schema = \"...\""};
      }
    } else {
      bool valid = !text->empty() && text->size() <= 40;
      for (char c : *text) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) valid = false;
      }
      if (!valid) {
        return BackendProblem{DiagCode::TypeMismatch, a.value->range,
                              "the backend's schema '" + *text + "' is not a valid schema prefix",
                              "use letters, digits and '_', at most 40"};
      }
      out.schema = *text;
    }
  }
  if (!has_url) {
    return BackendProblem{DiagCode::MissingAttribute, b.type_range, "a backend block needs url",
                          "write: url = \"postgres://USER@HOST:5432/DB\""};
  }
  return out;
}

}  // namespace plinth
