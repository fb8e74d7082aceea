// Tests for protocol/json.h: the strict RFC 8259 scanner, its readers, string escaping
// (which must match JSON.stringify byte for byte) and minify/is_compact.
#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/json.h"
#include "support.h"

namespace json = ferry::protocol::json;
using ferry::protocol::errc;
using ferry::protocol::test::exact_buffer;
using ferry::protocol::test::random_source;
using namespace std::string_literals;

namespace {

struct valid_case {
  std::string_view text;
  json::kind type;
  std::string_view raw;  // the value's span once surrounding whitespace is skipped
};

// Every kind, every number form RFC 8259 allows, every escape, 1- to 4-byte UTF-8.
const std::vector<valid_case> valid_documents = {
    {"null", json::kind::null, "null"},
    {"true", json::kind::boolean, "true"},
    {"false", json::kind::boolean, "false"},
    {"0", json::kind::number, "0"},
    {"-0", json::kind::number, "-0"},
    {"7", json::kind::number, "7"},
    {"-12", json::kind::number, "-12"},
    {"1234567890123456789012345678901234567890", json::kind::number, "1234567890123456789012345678901234567890"},
    {"0.5", json::kind::number, "0.5"},
    {"-0.0", json::kind::number, "-0.0"},
    {"1e10", json::kind::number, "1e10"},
    {"1E+2", json::kind::number, "1E+2"},
    {"-2.5e-3", json::kind::number, "-2.5e-3"},
    {"0e0", json::kind::number, "0e0"},
    {"1e400", json::kind::number, "1e400"},  // valid JSON; JSON.parse gives Infinity
    {R"("")", json::kind::string, R"("")"},
    {R"("abc")", json::kind::string, R"("abc")"},
    {R"("\" \\ \/ \b \f \n \r \t")", json::kind::string, R"("\" \\ \/ \b \f \n \r \t")"},
    {R"("\u0000\u001F\uABCD\uabcd")", json::kind::string, R"("\u0000\u001F\uABCD\uabcd")"},
    {R"("\ud83d\ude00")", json::kind::string, R"("\ud83d\ude00")"},
    {R"("\ud800")", json::kind::string, R"("\ud800")"},  // lone surrogate escape: JSON.parse accepts it
    {"\"\x7f\"", json::kind::string, "\"\x7f\""},           // DEL is not a control character in JSON
    {"\"caf\xc3\xa9\"", json::kind::string, "\"caf\xc3\xa9\""},
    {"\"\xe2\x82\xac\"", json::kind::string, "\"\xe2\x82\xac\""},
    {"\"\xef\xbf\xbf\"", json::kind::string, "\"\xef\xbf\xbf\""},
    {"\"\xf0\x9f\x98\x80\"", json::kind::string, "\"\xf0\x9f\x98\x80\""},
    {"\"\xf4\x8f\xbf\xbf\"", json::kind::string, "\"\xf4\x8f\xbf\xbf\""},  // U+10FFFF
    {"\"\xe2\x80\xa8\"", json::kind::string, "\"\xe2\x80\xa8\""},          // U+2028 is fine raw
    {"[]", json::kind::array, "[]"},
    {"[ ]", json::kind::array, "[ ]"},
    {"[1,2,3]", json::kind::array, "[1,2,3]"},
    {"[[[]],[{}]]", json::kind::array, "[[[]],[{}]]"},
    {R"(["a",{"b":[null,true,false,-1.5e3]}])", json::kind::array, R"(["a",{"b":[null,true,false,-1.5e3]}])"},
    {"{}", json::kind::object, "{}"},
    {R"({"a":1})", json::kind::object, R"({"a":1})"},
    {R"({"a":1,"a":2})", json::kind::object, R"({"a":1,"a":2})"},  // duplicates are legal JSON
    {R"({"":{"":[]}})", json::kind::object, R"({"":{"":[]}})"},
    {" \t\r\n[ 1 , { \"k\" : \"v\" } ]\n ", json::kind::array, "[ 1 , { \"k\" : \"v\" } ]"},
    {"  \"x\"  ", json::kind::string, "\"x\""},
    {"\n42\t", json::kind::number, "42"},
};

struct invalid_case {
  std::string_view name;
  std::string text;
  errc error = errc::invalid_json;
};

const std::vector<invalid_case> invalid_documents = {
    {"empty input", ""},
    {"only whitespace", " \t\r\n"},
    {"truncated literal", "tru"},
    {"capitalised literal", "True"},
    {"misspelt literal", "nul1"},
    {"literal with suffix", "nullx"},
    {"bare word", "undefined"},
    {"NaN", "NaN"},
    {"Infinity", "Infinity"},
    {"negative Infinity", "-Infinity"},
    {"lone minus", "-"},
    {"plus sign", "+1"},
    {"leading zero", "01"},
    {"negative leading zero", "-01"},
    {"leading dot", ".5"},
    {"trailing dot", "1."},
    {"dot without digits before exponent", "1.e5"},
    {"exponent without digits", "1e"},
    {"exponent sign without digits", "1e+"},
    {"hex number", "0x10"},
    {"minus then space", "- 1"},
    {"two numbers", "1 2"},
    {"single quotes", "'a'"},
    {"unterminated string", "\"abc"},
    {"unterminated escape at end", "\"\\"},
    {"unknown escape", R"("\x41")"},
    {"escaped single quote", R"("\'")"},
    {"uppercase U escape", R"("\U0041")"},
    {"short unicode escape", R"("\u12")"},
    {"non-hex unicode escape", R"("\u12G4")"},
    {"unicode escape cut by quote", R"("\u00"")"},
    {"raw NUL in string", "\"a\0b\""s},
    {"raw control character in string", "\"\x01\""},
    {"raw tab in string", "\"a\tb\""},
    {"raw newline in string", "\"a\nb\""},
    {"raw 0x1f in string", "\"\x1f\""},
    {"lone continuation byte", "\"\x80\""},
    {"overlong 2-byte NUL", "\"\xc0\x80\""},
    {"overlong 2-byte DEL", "\"\xc1\xbf\""},
    {"truncated 2-byte sequence", "\"\xc3\""},
    {"2-byte sequence with bad continuation", "\"\xc3\x28\""},
    {"overlong 3-byte sequence", "\"\xe0\x80\xaf\""},
    {"UTF-8 encoded surrogate", "\"\xed\xa0\x80\""},
    {"truncated 3-byte sequence", "\"\xe2\x82\""},
    {"overlong 4-byte sequence", "\"\xf0\x80\x80\xaf\""},
    {"code point above U+10FFFF", "\"\xf4\x90\x80\x80\""},
    {"lead byte 0xF5", "\"\xf5\x80\x80\x80\""},
    {"byte 0xFF", "\"\xff\""},
    {"byte 0xFE", "\"\xfe\""},
    {"truncated 4-byte sequence at end of input", "\"\xf0\x9f\x98"},
    {"invalid UTF-8 outside a string", "\xc3\xa9"},
    {"byte order mark", "\xef\xbb\xbf{}"},
    {"unclosed array", "[1,2"},
    {"unclosed object", "{\"a\":1"},
    {"trailing comma in array", "[1,]"},
    {"leading comma in array", "[,1]"},
    {"double comma", "[1,,2]"},
    {"missing comma", "[1 2]"},
    {"trailing comma in object", R"({"a":1,})"},
    {"member without value", R"({"a"})"},
    {"member with empty value", R"({"a":})"},
    {"missing colon", R"({"a" 1})"},
    {"unquoted key", "{a:1}"},
    {"numeric key", "{1:1}"},
    {"mismatched brackets", "[}"},
    {"extra closing bracket", "[1]]"},
    {"two documents", "{}{}"},
    {"trailing garbage", "[1] x"},
    {"NUL after value", "[1]\0"s},
    {"comment", "// c\n1"},
    {"vertical tab is not whitespace", "\v1"},
    {"form feed is not whitespace", "\f1"},
    {"non-breaking space is not whitespace", "\xc2\xa0" "1"},
};

std::string nested_arrays(unsigned depth) { return std::string(depth, '[') + std::string(depth, ']'); }

std::string nested_objects(unsigned depth) {
  std::string s;
  for (unsigned i = 0; i < depth; ++i) s += R"({"k":)";
  s += "null";
  for (unsigned i = 0; i < depth; ++i) s += '}';
  return s;
}

json::value parse_ok(std::string_view text) {
  auto r = json::parse(text);
  REQUIRE_MESSAGE(r.ok(), "should parse: ", text);
  return *r;
}

}  // namespace

TEST_CASE("parse accepts every valid document in the table and reports its kind and exact span") {
  for (const auto& c : valid_documents) {
    CAPTURE(c.text);
    exact_buffer in(c.text);
    auto r = json::parse(in.view());
    REQUIRE(r.ok());
    CHECK(r->type == c.type);
    CHECK(r->raw == c.raw);
    // the span points into the caller's buffer, it is not a copy
    CHECK(r->raw.data() >= in.view().data());
    CHECK(r->raw.data() + r->raw.size() <= in.view().data() + in.view().size());
  }
}

TEST_CASE("parse rejects malformed JSON with invalid_json") {
  for (const auto& c : invalid_documents) {
    CAPTURE(c.name);
    exact_buffer in(c.text);
    auto r = json::parse(in.view());
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == c.error);
  }
}

TEST_CASE("parse rejects invalid documents nested inside valid containers") {
  // the scanner must validate nested values, not just skip to the closing bracket
  for (const auto& c : invalid_documents) {
    if (c.text.empty() || c.text.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    CAPTURE(c.name);
    std::string in_array = "[0," + c.text + "]";
    std::string in_object = R"({"k":)" + c.text + "}";
    CHECK_FALSE(json::parse(exact_buffer(in_array).view()).ok());
    CHECK_FALSE(json::parse(exact_buffer(in_object).view()).ok());
  }
}

TEST_CASE("parse checks object keys like strings: escapes, control characters and UTF-8") {
  CHECK(json::parse(R"({"\u0041\n":1})").ok());
  CHECK_FALSE(json::parse(R"({"\q":1})").ok());
  CHECK_FALSE(json::parse("{\"a\x01\":1}").ok());
  CHECK_FALSE(json::parse("{\"\xff\":1}").ok());
}

TEST_CASE("parse accepts nesting up to the depth limit and rejects one level more with json_too_deep") {
  CHECK(json::default_max_depth == 64);
  CHECK(json::parse(nested_arrays(64)).ok());
  CHECK(json::parse(nested_objects(64)).ok());
  auto arrays = json::parse(nested_arrays(65));
  REQUIRE_FALSE(arrays.ok());
  CHECK(arrays.error() == errc::json_too_deep);
  auto objects = json::parse(nested_objects(65));
  REQUIRE_FALSE(objects.ok());
  CHECK(objects.error() == errc::json_too_deep);

  SUBCASE("mixed arrays and objects count towards the same limit") {
    std::string mixed;
    for (int i = 0; i < 33; ++i) mixed += R"([{"k":)";
    mixed += "1";
    for (int i = 0; i < 33; ++i) mixed += "}]";
    auto r = json::parse(mixed);  // 66 levels
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == errc::json_too_deep);
  }
  SUBCASE("the limit is a parameter") {
    CHECK(json::parse("[[1]]", 2).ok());
    CHECK(json::parse("[[1]]", 1).error() == errc::json_too_deep);
    CHECK(json::parse("1", 0).ok());  // scalars have no depth
    CHECK(json::parse("[]", 0).error() == errc::json_too_deep);
  }
  SUBCASE("a very deep document is rejected without exhausting the stack") {
    auto r = json::parse(nested_arrays(1'000'000));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == errc::json_too_deep);
  }
  SUBCASE("depth is checked before later syntax errors") {
    CHECK(json::parse(nested_arrays(65) + "x").error() == errc::json_too_deep);
  }
}

TEST_CASE("parse of every proper prefix of a structured document fails without reading past the prefix") {
  // Strings, literals, arrays and objects are self-delimiting, so no proper prefix of one is a
  // complete document. (A bare number or trailing whitespace is not: "12" starts with "1".)
  for (const auto& c : valid_documents) {
    if (c.type == json::kind::number || c.text != c.raw) continue;
    CAPTURE(c.text);
    for (size_t n = 0; n < c.text.size(); ++n) {
      exact_buffer prefix(c.text.substr(0, n));
      CAPTURE(n);
      CHECK_FALSE(json::parse(prefix.view()).ok());
    }
    CHECK(json::parse(exact_buffer(c.text).view()).ok());
  }
}

TEST_CASE("parse of every prefix of random documents never succeeds early and never over-reads") {
  random_source rnd(0x5eed'0001);
  for (int i = 0; i < 200; ++i) {
    auto doc = ferry::protocol::test::random_json(rnd, 4, json::kind::array);
    CAPTURE(doc.text);
    for (size_t n = 0; n < doc.text.size(); ++n) CHECK_FALSE(json::parse(exact_buffer(doc.text.substr(0, n)).view()).ok());
    CHECK(json::parse(exact_buffer(doc.text).view()).ok());
  }
}

TEST_CASE("parse accepts random JSON.stringify-style documents, with and without whitespace") {
  random_source rnd(0x5eed'0002);
  for (int i = 0; i < 500; ++i) {
    auto doc = ferry::protocol::test::random_json(rnd, 5);
    CAPTURE(doc.text);
    auto r = json::parse(doc.text);
    REQUIRE(r.ok());
    CHECK(r->type == doc.type);
    CHECK(r->raw == doc.text);
    CHECK(json::is_compact(doc.text));
    CHECK(json::minify(doc.text) == doc.text);

    std::string pretty = ferry::protocol::test::sprinkle_whitespace(rnd, doc.text);
    CAPTURE(pretty);
    auto rp = json::parse(pretty);
    REQUIRE(rp.ok());
    CHECK(rp->type == doc.type);
    CHECK(json::minify(pretty) == doc.text);
    CHECK(json::is_compact(pretty) == (pretty == doc.text));
  }
}

TEST_CASE("parse_first reads the value at the start of the text and ignores what follows it") {
  struct row {
    std::string_view text;
    json::kind type;
    std::string_view raw;
  };
  const std::vector<row> rows = {
      {R"({"topic":"t"},2,"x")", json::kind::object, R"({"topic":"t"})"},
      {" \n [1, 2] , {}", json::kind::array, "[1, 2]"},
      {R"("a,b","c")", json::kind::string, R"("a,b")"},
      {"12abc", json::kind::number, "12"},  // a number ends where its grammar ends
      {"-0.5e3]", json::kind::number, "-0.5e3"},
      {"true false", json::kind::boolean, "true"},
      {"null", json::kind::null, "null"},
      {"[]]]", json::kind::array, "[]"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.text);
    exact_buffer in(r.text);
    auto v = json::parse_first(in.view());
    REQUIRE(v.ok());
    CHECK(v->type == r.type);
    CHECK(v->raw == r.raw);
  }
}

TEST_CASE("parse_first rejects a malformed or missing first value") {
  for (std::string text : {""s, " "s, ",1"s, "tru,"s, "1.,2"s, "[1,2"s, R"("abc)"s, "\"\x01\""s, "{\"a\" 1}"s, "-"s,
                           "\"\xff\",1"s}) {
    CAPTURE(text);
    auto v = json::parse_first(exact_buffer(text).view());
    REQUIRE_FALSE(v.ok());
    CHECK(v.error() == errc::invalid_json);
  }
  auto deep = json::parse_first(nested_arrays(65) + ",1");
  REQUIRE_FALSE(deep.ok());
  CHECK(deep.error() == errc::json_too_deep);
  CHECK(json::parse_first(nested_arrays(64) + ",1").ok());
  CHECK(json::parse_first("[[1]],2", 1).error() == errc::json_too_deep);
}

TEST_CASE("parse_first agrees with parse on every valid document and never over-reads a prefix") {
  for (const auto& c : valid_documents) {
    CAPTURE(c.text);
    exact_buffer in(c.text);
    auto v = json::parse_first(in.view());
    REQUIRE(v.ok());
    CHECK(v->type == c.type);
    CHECK(v->raw == c.raw);
    for (size_t n = 0; n < c.text.size(); ++n) {
      exact_buffer prefix(c.text.substr(0, n));
      auto p = json::parse_first(prefix.view());
      // a prefix can only yield a value the full text starts with (e.g. "1" of "12")
      if (p.ok()) CHECK(c.raw.substr(0, p->raw.size()) == p->raw);
      if (p.ok() && c.type != json::kind::number) CHECK(p->raw == c.raw);
    }
  }
}

TEST_CASE("array_reader walks the elements of an array and rest() is what follows the last one") {
  auto v = parse_ok(R"([ 1 , "two" ,[3], {"four":4} ,null])");
  json::array_reader r(v);
  json::value e;
  REQUIRE(r.next(e));
  CHECK(e.type == json::kind::number);
  CHECK(e.raw == "1");
  CHECK(r.rest() == R"( , "two" ,[3], {"four":4} ,null)");
  REQUIRE(r.next(e));
  CHECK(e.raw == R"("two")");
  REQUIRE(r.next(e));
  CHECK(e.type == json::kind::array);
  CHECK(e.raw == "[3]");
  REQUIRE(r.next(e));
  CHECK(e.type == json::kind::object);
  CHECK(e.raw == R"({"four":4})");
  REQUIRE(r.next(e));
  CHECK(e.type == json::kind::null);
  CHECK(r.rest().empty());
  CHECK_FALSE(r.next(e));
  CHECK_FALSE(r.next(e));  // stays at the end
}

TEST_CASE("array_reader yields nothing for empty arrays") {
  for (std::string_view text : {"[]", "[ ]", "[\n\t]"}) {
    CAPTURE(text);
    json::array_reader r(parse_ok(text));
    json::value e;
    CHECK_FALSE(r.next(e));
  }
}

TEST_CASE("array_reader counts the elements of random arrays") {
  random_source rnd(0x5eed'0003);
  for (int i = 0; i < 200; ++i) {
    size_t n = rnd.between(0, 8);
    std::vector<std::string> elements;
    std::string text = "[";
    for (size_t k = 0; k < n; ++k) {
      elements.push_back(ferry::protocol::test::random_json(rnd, 3).text);
      if (k > 0) text += ',';
      text += elements.back();
    }
    text += ']';
    std::string pretty = ferry::protocol::test::sprinkle_whitespace(rnd, text);
    CAPTURE(pretty);
    json::array_reader r(parse_ok(pretty));
    json::value e;
    for (size_t k = 0; k < n; ++k) {
      REQUIRE(r.next(e));
      CHECK(json::minify(e.raw) == elements[k]);
    }
    CHECK_FALSE(r.next(e));
  }
}

TEST_CASE("object_reader walks members and gives raw keys with their quotes") {
  auto v = parse_ok(R"({ "a" : 1 , "b\n":[true] ,"":{}})");
  json::object_reader r(v);
  json::value k, e;
  REQUIRE(r.next(k, e));
  CHECK(k.raw == R"("a")");
  CHECK(e.raw == "1");
  REQUIRE(r.next(k, e));
  CHECK(k.raw == R"("b\n")");
  CHECK(json::unescape(k) == "b\n");
  CHECK(e.raw == "[true]");
  REQUIRE(r.next(k, e));
  CHECK(k.raw == R"("")");
  CHECK(e.raw == "{}");
  CHECK_FALSE(r.next(k, e));

  json::object_reader empty(parse_ok("{ }"));
  CHECK_FALSE(empty.next(k, e));
}

TEST_CASE("find_member compares keys after unescaping and reports absence") {
  auto v = parse_ok(R"({"\u005fplaceholder":true, "n\u0075m" : 3, "x":{"num":9}})");
  json::value out;
  REQUIRE(json::find_member(v, "_placeholder", out));
  CHECK(out.is_true());
  REQUIRE(json::find_member(v, "num", out));
  CHECK(out.raw == "3");
  CHECK_FALSE(json::find_member(v, "missing", out));
  CHECK_FALSE(json::find_member(v, "nu", out));
  CHECK_FALSE(json::find_member(parse_ok("{}"), "", out));
  REQUIRE(json::find_member(parse_ok(R"({"":0})"), "", out));
  CHECK(out.raw == "0");
}

TEST_CASE("find_member returns the last of duplicate keys, as JSON.parse does") {
  // Regression: it used to return the first, so {"_placeholder":true,"num":0,"num":5}
  // passed the placeholder check while JavaScript peers saw num 5 and failed.
  json::value out;
  REQUIRE(json::find_member(parse_ok(R"({"num":0,"num":5})"), "num", out));
  CHECK(out.raw == "5");
  REQUIRE(json::find_member(parse_ok(R"({"a":false,"b":1,"\u0061":true})"), "a", out));
  CHECK(out.is_true());
}

TEST_CASE("unescape resolves every escape and surrogate pairs to UTF-8") {
  struct row {
    std::string_view json;
    std::string text;
  };
  const std::vector<row> rows = {
      {R"("")", ""},
      {R"("plain")", "plain"},
      {R"("\"\\\/\b\f\n\r\t")", "\"\\/\b\f\n\r\t"},
      {R"("\u0000")", "\0"s},
      {R"("\u0041\u00e9\u20AC")", "A\xc3\xa9\xe2\x82\xac"},
      {R"("\u07ff\u0800\uffff")", "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"},
      {R"("\ud83d\ude00")", "\xf0\x9f\x98\x80"},
      {R"("\uDBFF\uDFFF")", "\xf4\x8f\xbf\xbf"},
      {"\"raw \xf0\x9f\x98\x80 and \\u00e9\"", "raw \xf0\x9f\x98\x80 and \xc3\xa9"},
      // lone surrogates become U+FFFD, which is what a UTF-8 encoder of a JS string emits
      {R"("\ud800")", "\xef\xbf\xbd"},
      {R"("\udc00")", "\xef\xbf\xbd"},
      {R"("\ud800x")", "\xef\xbf\xbdx"},
      {R"("\ud800\u0041")", "\xef\xbf\xbd" "A"},
      {R"("\ud800\ud800\udc00")", "\xef\xbf\xbd\xf0\x90\x80\x80"},
      {R"("\ude00\ud83d")", "\xef\xbf\xbd\xef\xbf\xbd"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.json);
    exact_buffer in(r.json);
    auto v = json::parse(in.view());
    REQUIRE(v.ok());
    CHECK(json::unescape(*v) == r.text);
    CHECK(json::string_equals(*v, r.text));
  }
}

TEST_CASE("string_equals compares the decoded string, not the raw bytes") {
  CHECK(json::string_equals(parse_ok(R"("connect")"), "connect"));
  CHECK(json::string_equals(parse_ok(R"("\u0063onnect")"), "connect"));
  CHECK_FALSE(json::string_equals(parse_ok(R"("connect")"), "connec"));
  CHECK_FALSE(json::string_equals(parse_ok(R"("connect")"), "connect "));
  CHECK_FALSE(json::string_equals(parse_ok(R"("\u0063onnect")"), "\\u0063onnect"));
  CHECK(json::string_equals(parse_ok(R"("")"), ""));
}

TEST_CASE("as_uint64 and as_int64 read integers and refuse fractions, exponents and overflow") {
  uint64_t u = 0;
  int64_t i = 0;
  CHECK(json::as_uint64(parse_ok("0"), u));
  CHECK(u == 0);
  CHECK(json::as_uint64(parse_ok("18446744073709551615"), u));
  CHECK(u == UINT64_MAX);
  CHECK_FALSE(json::as_uint64(parse_ok("18446744073709551616"), u));
  CHECK_FALSE(json::as_uint64(parse_ok("99999999999999999999"), u));
  CHECK_FALSE(json::as_uint64(parse_ok("-1"), u));
  CHECK_FALSE(json::as_uint64(parse_ok("-0"), u));
  CHECK_FALSE(json::as_uint64(parse_ok("1.0"), u));
  CHECK_FALSE(json::as_uint64(parse_ok("1e3"), u));

  CHECK(json::as_int64(parse_ok("-9223372036854775808"), i));
  CHECK(i == INT64_MIN);
  CHECK(json::as_int64(parse_ok("9223372036854775807"), i));
  CHECK(i == INT64_MAX);
  CHECK(json::as_int64(parse_ok("-0"), i));
  CHECK(i == 0);
  CHECK(json::as_int64(parse_ok("-42"), i));
  CHECK(i == -42);
  CHECK_FALSE(json::as_int64(parse_ok("9223372036854775808"), i));
  CHECK_FALSE(json::as_int64(parse_ok("-9223372036854775809"), i));
  CHECK_FALSE(json::as_int64(parse_ok("-1.5"), i));
  CHECK_FALSE(json::as_int64(parse_ok("-1E2"), i));
}

TEST_CASE("quoted escapes every control character exactly like JSON.stringify") {
  // Expected strings produced by node: JSON.stringify(String.fromCharCode(c)) for c < 0x20.
  const std::string_view expected[32] = {
      R"("\u0000")", R"("\u0001")", R"("\u0002")", R"("\u0003")", R"("\u0004")", R"("\u0005")", R"("\u0006")",
      R"("\u0007")", R"("\b")",     R"("\t")",     R"("\n")",     R"("\u000b")", R"("\f")",     R"("\r")",
      R"("\u000e")", R"("\u000f")", R"("\u0010")", R"("\u0011")", R"("\u0012")", R"("\u0013")", R"("\u0014")",
      R"("\u0015")", R"("\u0016")", R"("\u0017")", R"("\u0018")", R"("\u0019")", R"("\u001a")", R"("\u001b")",
      R"("\u001c")", R"("\u001d")", R"("\u001e")", R"("\u001f")"};
  for (int c = 0; c < 0x20; ++c) {
    CAPTURE(c);
    CHECK(json::quoted(std::string(1, static_cast<char>(c))) == expected[c]);
  }
}

TEST_CASE("quoted escapes quotes and backslashes and leaves everything else as JSON.stringify does") {
  // node: JSON.stringify("\"\\/\x7f\u2028\u2029é😀") === '"\\"\\\\/\x7f\u2028\u2029é😀"'
  CHECK(json::quoted("\"\\/\x7f\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\xf0\x9f\x98\x80") ==
        "\"\\\"\\\\/\x7f\xe2\x80\xa8\xe2\x80\xa9\xc3\xa9\xf0\x9f\x98\x80\"");
  CHECK(json::quoted("") == R"("")");
  CHECK(json::quoted("plain text") == R"("plain text")");
  CHECK(json::quoted("a\"b\\c\nd") == R"("a\"b\\c\nd")");
  CHECK(json::quoted("\0"s) == R"("\u0000")");
  CHECK(json::quoted("ends with \x1f") == R"("ends with \u001f")");
}

TEST_CASE("append_quoted appends to what is already in the buffer") {
  std::string out = "prefix:";
  json::append_quoted(out, "a\tb");
  CHECK(out == R"(prefix:"a\tb")");
  json::append_quoted(out, "");
  CHECK(out == R"(prefix:"a\tb""")");
}

TEST_CASE("quoted then parse then unescape gives back random UTF-8 text") {
  random_source rnd(0x5eed'0004);
  for (int i = 0; i < 1000; ++i) {
    std::string text = rnd.utf8_string(20);
    std::string q = json::quoted(text);
    CAPTURE(q);
    exact_buffer in(q);
    auto v = json::parse(in.view());
    REQUIRE(v.ok());
    CHECK(v->is_string());
    CHECK(json::unescape(*v) == text);
    CHECK(json::string_equals(*v, text));
    CHECK(json::is_compact(q));
  }
}

TEST_CASE("is_compact is false exactly when there is whitespace outside strings") {
  CHECK(json::is_compact(R"({"a":[1,2,"x y"]})"));
  CHECK(json::is_compact(R"(" \t ")"));
  CHECK(json::is_compact(R"(["\"", " "])") == false);
  CHECK(json::is_compact(R"(["\\"," "])"));
  CHECK(json::is_compact(R"(["\\" ," "])") == false);
  CHECK_FALSE(json::is_compact(" 1"));
  CHECK_FALSE(json::is_compact("1 "));
  CHECK_FALSE(json::is_compact("[1,\n2]"));
  CHECK_FALSE(json::is_compact("{\"a\":\t1}"));
  CHECK_FALSE(json::is_compact("{\"a\"\r:1}"));
}

TEST_CASE("minify removes insignificant whitespace and keeps strings byte-exact") {
  struct row {
    std::string_view in, out;
  };
  const std::vector<row> rows = {
      {" { \"a\" : [ 1 , 2 ] , \"b\" : \"x  y\" } ", R"({"a":[1,2],"b":"x  y"})"},
      {"[ \"\\\" \" , \"\\\\\" , \" \" ]", R"(["\" ","\\"," "])"},
      {"\t\r\n\"\\u0020\"\n", R"("\u0020")"},
      {"[]", "[]"},
      {"  -1.5e+3  ", "-1.5e+3"},
      {"[ \"\xe2\x80\xa8 \" ]", "[\"\xe2\x80\xa8 \"]"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.in);
    REQUIRE(json::parse(r.in).ok());
    std::string m = json::minify(r.in);
    CHECK(m == r.out);
    CHECK(json::is_compact(m));
    CHECK(json::parse(m).ok());
  }
}

TEST_CASE("first_value takes the first value of validated text without scanning the rest") {
  CHECK(json::first_value(R"({"a":[1,"]"],"b":{"c":"}"}},2,"x")").raw == R"({"a":[1,"]"],"b":{"c":"}"}})");
  CHECK(json::first_value(R"(  "q\"uote" , 1)").raw == R"("q\"uote")");
  CHECK(json::first_value("-12.5e3,true").raw == "-12.5e3");
  CHECK(json::first_value("true").type == json::kind::boolean);
  CHECK(json::first_value("null,1").raw == "null");
  CHECK(json::first_value("[[],[[]]]").type == json::kind::array);
  CHECK(json::first_value("").raw.empty());
  CHECK(json::first_value("   ").raw.empty());
}

TEST_CASE("parse reports whether the text has insignificant whitespace") {
  bool compact = false;
  REQUIRE(json::parse(R"({"a":[1,"x y"],"b":null})", json::default_max_depth, compact).ok());
  CHECK(compact);  // whitespace inside a string does not count
  REQUIRE(json::parse(R"({"a": [1]})", json::default_max_depth, compact).ok());
  CHECK_FALSE(compact);
  REQUIRE(json::parse(" 1", json::default_max_depth, compact).ok());
  CHECK_FALSE(compact);
}
