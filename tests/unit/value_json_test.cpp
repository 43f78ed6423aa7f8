// Tests for the lossless Value <-> JSON encoding (compiler/types/value_json.h).

#include "compiler/types/value_json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace plinth {
namespace {

using nlohmann::json;

// Equal kinds, numbers, unknown types and sensitive marks at every level.
::testing::AssertionResult Same(const Value& a, const Value& b, const std::string& path = ".") {
  if (a.kind() != b.kind()) return ::testing::AssertionFailure() << "kind differs at " << path;
  if (a.sensitive() != b.sensitive()) return ::testing::AssertionFailure() << "sensitive mark differs at " << path;
  switch (a.kind()) {
    case Value::Kind::Null: return ::testing::AssertionSuccess();
    case Value::Kind::Bool:
    case Value::Kind::Number:
    case Value::Kind::Duration:
    case Value::Kind::Size:
    case Value::Kind::Percent:
      if (a.as_number() == b.as_number() &&
          std::signbit(a.as_number()) == std::signbit(b.as_number())) {
        return ::testing::AssertionSuccess();
      }
      return ::testing::AssertionFailure() << "number differs at " << path << ": " << a.as_number() << " vs "
                                           << b.as_number();
    case Value::Kind::String:
      if (a.as_string() == b.as_string()) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "string differs at " << path;
    case Value::Kind::Unknown:
      if (a.unknown_type() == b.unknown_type()) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure() << "unknown type differs at " << path;
    case Value::Kind::List: {
      if (a.as_list().size() != b.as_list().size()) return ::testing::AssertionFailure() << "size at " << path;
      for (size_t i = 0; i < a.as_list().size(); ++i) {
        auto r = Same(a.as_list()[i], b.as_list()[i], path + "[" + std::to_string(i) + "]");
        if (!r) return r;
      }
      return ::testing::AssertionSuccess();
    }
    case Value::Kind::Object: {
      if (a.as_object().size() != b.as_object().size()) return ::testing::AssertionFailure() << "keys at " << path;
      for (const auto& [k, v] : a.as_object()) {
        auto it = b.as_object().find(k);
        if (it == b.as_object().end()) return ::testing::AssertionFailure() << "missing key " << k << " at " << path;
        auto r = Same(v, it->second, path + "." + k);
        if (!r) return r;
      }
      return ::testing::AssertionSuccess();
    }
  }
  return ::testing::AssertionFailure();
}

Value RoundTrip(const Value& v) {
  ValueJsonResult j = ValueToJson(v);
  EXPECT_TRUE(j.ok()) << j.error;
  // Through text, as the state store does.
  json reparsed = json::parse(j.json.dump());
  ValueFromJsonResult back = ValueFromJson(reparsed);
  EXPECT_TRUE(back.ok()) << back.error;
  return back.value;
}

TEST(ValueJson, PrimitivesUseNativeJson) {
  EXPECT_EQ(ValueToJson(Value::Null()).json, json(nullptr));
  EXPECT_EQ(ValueToJson(Value::Bool(true)).json, json(true));
  EXPECT_EQ(ValueToJson(Value::Number(42)).json.dump(), "42");
  EXPECT_EQ(ValueToJson(Value::Number(0.1)).json.dump(), "0.1");
  EXPECT_EQ(ValueToJson(Value::String("hi")).json, json("hi"));
  EXPECT_EQ(ValueToJson(Value::Duration(30000)).json.dump(), R"({"$duration":30000})");
  EXPECT_EQ(ValueToJson(Value::Size(1024)).json.dump(), R"({"$size":1024})");
  EXPECT_EQ(ValueToJson(Value::Percent(80)).json.dump(), R"({"$percent":80})");
  EXPECT_EQ(ValueToJson(Value::Unknown(Type::List(Type::String()))).json.dump(),
            R"({"$unknown":{"list":"string"}})");
  EXPECT_EQ(ValueToJson(Value::String("pw").WithSensitive()).json.dump(), R"({"$sensitive":"pw"})");
}

TEST(ValueJson, RoundTripsEveryKind) {
  const std::vector<Value> values = {
      Value::Null(),
      Value::Bool(false),
      Value::Bool(true),
      Value::Number(0),
      Value::Number(-0.0),
      Value::Number(1.5e300),
      Value::Number(-123456789.125),
      Value::Number(9007199254740993.0),  // above 2^53: written as a double
      Value::Number(0.1 + 0.2),
      Value::String(""),
      Value::String("with \"quotes\", \\ and \n newlines, ünïcödé, ${not a template}"),
      Value::String("$duration"),
      Value::Duration(1.5),
      Value::Size(10737418240.0),
      Value::Percent(12.5),
      Value::List({}),
      Value::Object({}),
      Value::Unknown(Type::Any()),
      Value::Unknown(Type::Object({{"a", Type::Map(Type::Duration())}, {"b b", Type::List(Type::Int())}})),
  };
  for (const Value& v : values) {
    EXPECT_TRUE(Same(v, RoundTrip(v))) << v.ToString(true);
    EXPECT_TRUE(Same(v.WithSensitive(), RoundTrip(v.WithSensitive()))) << v.ToString(true);
  }
}

TEST(ValueJson, RoundTripsNestedValuesWithMarksInside) {
  Value v = Value::Object({
      {"name", Value::String("bucket")},
      {"quota", Value::Size(1 << 30)},
      {"timeouts", Value::List({Value::Duration(1000), Value::Duration(5 * 60000).WithSensitive()})},
      {"tags", Value::Object({{"team", Value::String("infra")}, {"$ref", Value::Unknown(Type::String())}})},
      {"secret", Value::Object({{"token", Value::String("t")}}).WithSensitive()},
      {"deep", Value::List({Value::List({Value::Object({{"x", Value::Percent(5).WithSensitive()}})})})},
  });
  EXPECT_TRUE(Same(v, RoundTrip(v)));
}

TEST(ValueJson, KeysStartingWithDollarAreEscaped) {
  Value v = Value::Object({{"$duration", Value::Number(5)},
                           {"$", Value::Bool(true)},
                           {"$$x", Value::String("two")},
                           {"", Value::Null()},
                           {"plain", Value::Number(1)}});
  ValueJsonResult j = ValueToJson(v);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(j.json.contains("$$duration"));
  EXPECT_TRUE(j.json.contains("$$"));
  EXPECT_TRUE(j.json.contains("$$$x"));
  EXPECT_FALSE(j.json.contains("$duration"));
  EXPECT_TRUE(Same(v, RoundTrip(v)));
  // A single-key object whose key is escaped stays an object.
  Value single = Value::Object({{"$sensitive", Value::String("not a mark")}});
  Value back = RoundTrip(single);
  EXPECT_TRUE(Same(single, back));
  EXPECT_FALSE(back.sensitive());
}

TEST(ValueJson, NonFiniteNumbersAreRejected) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const Value& v : {Value::Number(nan), Value::Number(inf), Value::Number(-inf), Value::Duration(inf),
                         Value::Size(nan), Value::Percent(-inf)}) {
    ValueJsonResult j = ValueToJson(v);
    EXPECT_FALSE(j.ok());
  }
  ValueJsonResult nested = ValueToJson(Value::Object({{"a", Value::List({Value::Number(1), Value::Number(nan)})}}));
  ASSERT_FALSE(nested.ok());
  EXPECT_EQ(nested.error, "NaN at .a[1] has no JSON form");
}

TEST(ValueJson, MalformedEncodingsAreRejected) {
  const char* bad[] = {
      R"({"$duration": "30s"})",          // tag payload not a number
      R"({"$frobnicate": 1})",            // unknown tag
      R"({"$size": 1, "other": 2})",      // tag with company
      R"({"$": 1})",                      // bare "$" is never written for a key
      R"({"$unknown": "strnig"})",        // unknown type name
      R"({"$unknown": {"list": 1}})",     // malformed type
      R"({"a": [1, {"$percent": null}]})",
  };
  for (const char* text : bad) {
    ValueFromJsonResult r = ValueFromJson(json::parse(text));
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_TRUE(r.value.is_null()) << text;
  }
  ValueFromJsonResult r = ValueFromJson(json::parse(R"({"a": {"b": {"$duration": "x"}}})"));
  EXPECT_NE(r.error.find(".a.b"), std::string::npos) << r.error;
}

TEST(ValueJson, TypesRoundTrip) {
  for (const Type& t : {Type::Any(), Type::Bool(), Type::Int(), Type::Number(), Type::String(), Type::Duration(),
                        Type::Size(), Type::Percent(), Type::List(Type::Map(Type::Percent())),
                        Type::Object({{"x", Type::Object({})}, {"y", Type::List(Type::Any())}})}) {
    Type back;
    std::string error;
    ASSERT_TRUE(TypeFromJson(json::parse(TypeToJson(t).dump()), &back, &error)) << error;
    EXPECT_EQ(back, t) << t.ToString();
  }
}

}  // namespace
}  // namespace plinth
