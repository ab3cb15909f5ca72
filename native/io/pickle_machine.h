// A restricted pickle virtual machine. It builds a tree of plain Python-like
// objects and never imports anything itself: every GLOBAL, call (REDUCE /
// NEWOBJ), BUILD and persistent id goes through PickleHooks, which decide
// what is allowed. Unknown opcodes are refused. The machine is iterative and
// bounded (objects, memo entries), and so is the destruction of what it built:
// a stranger's pickle can nest a million levels deep.
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
  // Record: an instance of a TorchScript class (`__torch__.*`), kept as inert data: its class name in
  // `text`, its attributes (from BUILD) in `entries`. Nothing of the class's code is ever looked at.
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Tensor, Storage, Record };
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

  Object() = default;
  Object(const Object&) = delete;
  Object& operator=(const Object&) = delete;
  // Hands the children to the outermost destructor on this thread, which releases them in a loop:
  // the default, recursive destruction overflows the stack on deeply nested input.
  ~Object();
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

// What one pickle may build. Each opcode makes at most one object, so these bound the machine's
// memory whatever the input; real state dicts use a few thousand of each.
struct Limits {
  size_t max_objects = 2'000'000;
  size_t max_memo = 1'000'000;
};

// Runs the pickle in `data` to its STOP opcode. Throws std::runtime_error
// (without a file name; callers add it) on malformed or refused input.
Ref unpickle(const std::string& data, PickleHooks& hooks, const Limits& limits = {});

}  // namespace clip::io::pickle
