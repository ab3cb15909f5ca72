// A small JSON reader and string escaper, enough for safetensors headers.
// LibTorch ships no JSON library, and a header is at most a few MB.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace clip::io::json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Kind kind = Kind::Null;
  bool boolean = false;
  std::string text;  // the string, or a number's literal text
  std::vector<Value> items;                           // Array
  std::vector<std::pair<std::string, Value>> members;  // Object, in document order

  bool is_object() const { return kind == Kind::Object; }
  bool is_array() const { return kind == Kind::Array; }
  bool is_string() const { return kind == Kind::String; }
  // A non-negative integer literal that fits in 64 bits, else throws.
  uint64_t as_uint64() const;
};

// Throws std::runtime_error("...at byte N") on malformed input, duplicate
// object keys or nesting deeper than 64.
Value parse(const std::string& text);

// A quoted JSON string; non-ASCII UTF-8 is kept as is (like serde_json).
std::string quote(const std::string& s);

}  // namespace clip::io::json
