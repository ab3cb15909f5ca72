// A restricted pickle virtual machine. It builds a tree of plain Python-like
// objects and never imports anything itself: every GLOBAL, call (REDUCE /
// NEWOBJ), BUILD and persistent id goes through PickleHooks, which decide
// what is allowed. Unknown opcodes are refused.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Storage.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace clip::io::pickle {

struct Object;
using Ref = std::shared_ptr<Object>;

struct Object {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Tensor, Storage };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0;
  std::string text;                          // String, Bytes, Global ("module.name")
  std::vector<Ref> items;                    // Tuple, List
  std::vector<std::pair<Ref, Ref>> entries;  // Dict, insertion order; later duplicates win
  at::Tensor tensor;                         // Tensor
  c10::Storage storage;                      // Storage
  c10::ScalarType storage_dtype = c10::ScalarType::Byte;

  static Ref make(Kind kind) {
    auto o = std::make_shared<Object>();
    o->kind = kind;
    return o;
  }
};

const char* kind_name(Object::Kind kind);

class PickleHooks {
 public:
  virtual ~PickleHooks() = default;
  virtual Ref find_class(const std::string& module, const std::string& name) = 0;
  virtual Ref call(const Ref& callable, const Ref& args) = 0;
  virtual Ref persistent_load(const Ref& pid) = 0;
  virtual void build(const Ref& object, const Ref& state) = 0;
};

// Runs the pickle in `data` to its STOP opcode. Throws std::runtime_error
// (without a file name; callers add it) on malformed or refused input.
Ref unpickle(const std::string& data, PickleHooks& hooks);

}  // namespace clip::io::pickle
