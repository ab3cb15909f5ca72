#include "pickle_machine.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <unordered_map>

namespace clip::io::pickle {
namespace {

using Kind = Object::Kind;

[[noreturn]] void fail(const std::string& why, size_t at) {
  throw std::runtime_error("pickle: " + why + " (at byte " + std::to_string(at) + ")");
}

class Machine {
 public:
  Machine(const std::string& data, PickleHooks& hooks, const Limits& limits) : data_(data), hooks_(hooks), limits_(limits) {}

  Ref run() {
    for (;;) {
      op_at_ = pos_;
      uint8_t op = read_u8();
      switch (op) {
        case 0x80: read_u8(); break;  // PROTO: every version's simple opcodes are handled alike
        case 0x95: read_bytes(8); break;  // FRAME: framing is only a hint for buffered readers
        case '.': {  // STOP
          Ref result = pop();
          if (!stack_.empty() || !marks_.empty()) fail("objects left on the stack at STOP", op_at_);
          return result;
        }
        case '(': marks_.push_back(stack_.size()); break;
        case '0': pop(); break;
        case '1': pop_mark(); break;
        case '2': push(top()); break;
        case 'N': push(Object::make(Kind::None)); break;
        case 0x88: push_bool(true); break;
        case 0x89: push_bool(false); break;
        case 'J': push_int(static_cast<int32_t>(read_le(4))); break;
        case 'K': push_int(read_le(1)); break;
        case 'M': push_int(read_le(2)); break;
        case 0x8a: push_int(read_long(read_le(1))); break;
        case 0x8b: push_int(read_long(read_le(4))); break;
        case 'G': {
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | read_u8();  // big-endian
          auto o = Object::make(Kind::Float);
          std::memcpy(&o->floating, &bits, 8);
          push(o);
          break;
        }
        case 'X': push_text(Kind::String, read_le(4)); break;
        case 0x8c: push_text(Kind::String, read_le(1)); break;
        case 0x8d: push_text(Kind::String, read_le(8)); break;
        case 'T': push_text(Kind::String, read_le(4)); break;  // Python 2 str
        case 'U': push_text(Kind::String, read_le(1)); break;
        case 'B': push_text(Kind::Bytes, read_le(4)); break;
        case 'C': push_text(Kind::Bytes, read_le(1)); break;
        case 0x8e: push_text(Kind::Bytes, read_le(8)); break;
        case ')': push(Object::make(Kind::Tuple)); break;
        case 't': push_tuple(pop_mark()); break;
        case 0x85: push_tuple(pop_n(1)); break;
        case 0x86: push_tuple(pop_n(2)); break;
        case 0x87: push_tuple(pop_n(3)); break;
        case ']': push(Object::make(Kind::List)); break;
        case 'l': {
          auto list = Object::make(Kind::List);
          list->items = pop_mark();
          push(list);
          break;
        }
        case 'a': {
          Ref item = pop();
          expect(top(), Kind::List, "APPEND")->items.push_back(item);
          break;
        }
        case 'e': {
          auto items = pop_mark();
          auto& list = expect(top(), Kind::List, "APPENDS")->items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case '}': push(Object::make(Kind::Dict)); break;
        case 'd': {
          auto dict = Object::make(Kind::Dict);
          add_pairs(dict, pop_mark());
          push(dict);
          break;
        }
        case 's': {
          Ref value = pop();
          Ref key = pop();
          expect(top(), Kind::Dict, "SETITEM")->entries.emplace_back(key, value);
          break;
        }
        case 'u': {
          auto pairs = pop_mark();
          add_pairs(expect(top(), Kind::Dict, "SETITEMS"), pairs);
          break;
        }
        case 'c': {
          std::string module = read_line();
          std::string name = read_line();
          push(hooks_.find_class(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Ref name = pop();
          Ref module = pop();
          if (module->kind != Kind::String || name->kind != Kind::String) fail("STACK_GLOBAL needs two strings", op_at_);
          push(hooks_.find_class(module->text, name->text));
          break;
        }
        case 'R':
        case 0x81: {  // REDUCE, NEWOBJ: both "call this class with these args" for our globals
          Ref args = pop();
          Ref callable = pop();
          if (args->kind != Kind::Tuple) fail("call arguments are not a tuple", op_at_);
          push(hooks_.call(callable, args));
          break;
        }
        case 'b': {
          Ref state = pop();
          hooks_.build(top(), state);
          break;
        }
        case 'Q': push(hooks_.persistent_load(pop())); break;
        case 'q': memo_put(read_le(1)); break;
        case 'r': memo_put(read_le(4)); break;
        case 0x94: memo_put(memo_.size()); break;
        case 'h': push(memo_get(read_le(1))); break;
        case 'j': push(memo_get(read_le(4))); break;
        default: {
          char hex[8];
          std::snprintf(hex, sizeof hex, "0x%02x", op);
          fail(std::string("unsupported opcode ") + hex, op_at_);
        }
      }
    }
  }

 private:
  uint8_t read_u8() {
    if (pos_ >= data_.size()) fail("data ends before STOP", pos_);
    return static_cast<uint8_t>(data_[pos_++]);
  }

  std::string read_bytes(uint64_t n) {
    if (n > data_.size() - pos_) fail("length " + std::to_string(n) + " runs past the end of the data", op_at_);
    std::string s = data_.substr(pos_, n);
    pos_ += n;
    return s;
  }

  uint64_t read_le(int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(read_u8()) << (8 * i);
    return v;
  }

  // LONG1 / LONG4: two's-complement little-endian of any length.
  int64_t read_long(uint64_t n) {
    std::string bytes = read_bytes(n);
    if (n == 0) return 0;
    if (n > 8) {
      // Longer encodings are fine if they are only sign extension.
      bool negative = static_cast<uint8_t>(bytes[7]) & 0x80;
      for (size_t i = 8; i < n; ++i)
        if (static_cast<uint8_t>(bytes[i]) != (negative ? 0xFF : 0x00)) fail("integer does not fit in 64 bits", op_at_);
      n = 8;
    }
    uint64_t v = 0;
    for (uint64_t i = 0; i < n; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
    if (n < 8 && (static_cast<uint8_t>(bytes[n - 1]) & 0x80)) v |= ~uint64_t{0} << (8 * n);
    return static_cast<int64_t>(v);
  }

  std::string read_line() {
    auto nl = data_.find('\n', pos_);
    if (nl == std::string::npos) fail("GLOBAL without a newline", op_at_);
    std::string s = data_.substr(pos_, nl - pos_);
    pos_ = nl + 1;
    return s;
  }

  void push(Ref o) {
    // Every opcode pushes at most once, so this counts the objects built (and the memo's re-uses).
    if (++pushed_ > limits_.max_objects)
      fail("more than " + std::to_string(limits_.max_objects) + " objects; refused as a resource bomb", op_at_);
    stack_.push_back(std::move(o));
  }
  void push_bool(bool b) {
    auto o = Object::make(Kind::Bool);
    o->boolean = b;
    push(o);
  }
  void push_int(int64_t v) {
    auto o = Object::make(Kind::Int);
    o->integer = v;
    push(o);
  }
  void push_text(Kind kind, uint64_t n) {
    auto o = Object::make(kind);
    o->text = read_bytes(n);
    push(o);
  }
  void push_tuple(std::vector<Ref> items) {
    auto o = Object::make(Kind::Tuple);
    o->items = std::move(items);
    push(o);
  }

  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }

  Ref pop() {
    if (stack_.size() <= floor()) fail("stack underflow", op_at_);
    Ref o = std::move(stack_.back());
    stack_.pop_back();
    return o;
  }
  const Ref& top() {
    if (stack_.size() <= floor()) fail("stack underflow", op_at_);
    return stack_.back();
  }
  std::vector<Ref> pop_n(size_t n) {
    if (stack_.size() < floor() + n) fail("stack underflow", op_at_);
    std::vector<Ref> items(stack_.end() - n, stack_.end());
    stack_.resize(stack_.size() - n);
    return items;
  }
  std::vector<Ref> pop_mark() {
    if (marks_.empty()) fail("no MARK on the stack", op_at_);
    size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<Ref> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark);
    return items;
  }
  const Ref& expect(const Ref& o, Kind kind, const char* op) {
    if (o->kind != kind) fail(std::string(op) + " on a " + kind_name(o->kind), op_at_);
    return o;
  }
  void add_pairs(const Ref& dict, const std::vector<Ref>& flat) {
    if (flat.size() % 2) fail("odd number of items for a dict", op_at_);
    for (size_t i = 0; i < flat.size(); i += 2) dict->entries.emplace_back(flat[i], flat[i + 1]);
  }
  void memo_put(uint64_t index) {
    if (memo_.size() >= limits_.max_memo && !memo_.count(index))
      fail("more than " + std::to_string(limits_.max_memo) + " memo entries; refused as a resource bomb", op_at_);
    memo_[index] = top();
  }
  Ref memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored", op_at_);
    return it->second;
  }

  const std::string& data_;
  PickleHooks& hooks_;
  const Limits limits_;
  size_t pushed_ = 0;
  size_t pos_ = 0;
  size_t op_at_ = 0;
  std::vector<Ref> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Ref> memo_;
};

}  // namespace

const char* kind_name(Object::Kind kind) {
  switch (kind) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Tensor: return "tensor";
    case Kind::Storage: return "storage";
    case Kind::Record: return "TorchScript object";
  }
  return "?";
}

Object::~Object() {
  // The outermost destructor on this thread owns the list; the ones it triggers only add to it.
  static thread_local std::vector<Ref>* pending = nullptr;
  std::vector<Ref> mine;
  const bool outermost = pending == nullptr;
  if (outermost) pending = &mine;
  for (auto& item : items) pending->push_back(std::move(item));
  for (auto& [key, value] : entries) {
    pending->push_back(std::move(key));
    pending->push_back(std::move(value));
  }
  if (!outermost) return;
  while (!mine.empty()) {
    Ref next = std::move(mine.back());
    mine.pop_back();
    next.reset();  // may push its own children onto `mine`
  }
  pending = nullptr;
}

Ref unpickle(const std::string& data, PickleHooks& hooks, const Limits& limits) { return Machine(data, hooks, limits).run(); }

}  // namespace clip::io::pickle
