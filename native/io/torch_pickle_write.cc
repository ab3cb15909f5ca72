// write_torch_pickle: the same container and pickle torch.save produces, so
// Python's torch.load accepts it under its default weights_only=True (which
// refuses torch::pickle_save's restore_type_tag global).
#include "weights.h"

#include "atomic_file.h"
#include "dtype_names.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace clip::io {
namespace {

constexpr int kMaxNesting = 200;

class PickleEmitter {
 public:
  std::string bytes;
  std::vector<at::Tensor> storages;  // data/<index> records, in order

  void op(uint8_t code) { bytes += static_cast<char>(code); }
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) bytes += static_cast<char>((v >> (8 * i)) & 0xFF);
  }
  void global(const char* module, const char* name) {
    op('c');
    bytes += module;
    bytes += '\n';
    bytes += name;
    bytes += '\n';
  }
  void text(const std::string& s) {
    op('X');
    le(s.size(), 4);
    bytes += s;
  }
  void integer(int64_t v) {
    if (v >= 0 && v < 256) {
      op('K');
      le(v, 1);
    } else if (v >= 0 && v < 65536) {
      op('M');
      le(v, 2);
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
      op('J');
      le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      op(0x8a);  // LONG1, 8 bytes two's complement
      bytes += static_cast<char>(8);
      le(static_cast<uint64_t>(v), 8);
    }
  }
  void floating(double d) {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    op('G');
    for (int i = 7; i >= 0; --i) bytes += static_cast<char>((bits >> (8 * i)) & 0xFF);
  }
  void int_tuple(at::IntArrayRef values) {
    op('(');
    for (int64_t v : values) integer(v);
    op('t');
  }
  void empty_ordered_dict() {
    global("collections", "OrderedDict");
    op(')');
    op('R');
  }

  void tensor(const at::Tensor& t, const std::string& where) {
    auto storage_class = storage_class_name(t.scalar_type());
    if (!storage_class)
      throw std::runtime_error(where + ": dtype " + std::string(c10::toString(t.scalar_type())) +
                               " cannot be written to a torch.save file");
    at::Tensor cpu = t.detach().to(at::kCPU).contiguous();
    const std::string key = std::to_string(storages.size());
    storages.push_back(cpu);
    // _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, backward_hooks)
    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    op('(');
    text("storage");
    global("torch", storage_class->c_str());
    text(key);
    text("cpu");
    integer(cpu.numel());
    op('t');
    op('Q');  // BINPERSID
    integer(0);
    int_tuple(cpu.sizes());
    int_tuple(cpu.strides());
    op(0x89);  // requires_grad False
    empty_ordered_dict();
    op('t');
    op('R');
  }

  void value(const c10::IValue& v, const std::string& where, int depth) {
    if (depth > kMaxNesting) throw std::runtime_error(where + ": nesting too deep");
    if (v.isNone()) {
      op('N');
    } else if (v.isBool()) {
      op(v.toBool() ? 0x88 : 0x89);
    } else if (v.isInt()) {
      integer(v.toInt());
    } else if (v.isDouble()) {
      floating(v.toDouble());
    } else if (v.isString()) {
      text(v.toStringRef());
    } else if (v.isTensor()) {
      tensor(v.toTensor(), where);
    } else if (v.isTuple()) {
      const auto& items = v.toTupleRef().elements();
      op('(');
      for (size_t i = 0; i < items.size(); ++i) value(items[i], where + "[" + std::to_string(i) + "]", depth + 1);
      op('t');
    } else if (v.isList()) {
      auto list = v.toListRef();
      op(']');
      if (!list.empty()) {
        op('(');
        for (size_t i = 0; i < list.size(); ++i) value(list[i], where + "[" + std::to_string(i) + "]", depth + 1);
        op('e');
      }
    } else if (v.isGenericDict()) {
      dict(v.toGenericDict(), where, depth);
    } else {
      throw std::runtime_error(where + ": a " + v.tagKind() + " cannot be written to a torch.save file");
    }
  }

  void dict(const c10::impl::GenericDict& d, const std::string& where, int depth) {
    // state_dict()s are OrderedDicts; optimizer states and the like plain dicts.
    bool all_tensors = d.size() > 0;
    for (const auto& e : d) all_tensors = all_tensors && e.value().isTensor();
    if (all_tensors) {
      empty_ordered_dict();
    } else {
      op('}');
    }
    if (d.size() == 0) return;
    op('(');
    for (const auto& e : d) {
      const auto& k = e.key();
      if (!k.isString() && !k.isInt() && !k.isDouble() && !k.isBool())
        throw std::runtime_error(where + ": dict key of type " + k.tagKind() + " cannot be written");
      std::string key_text = k.isString() ? k.toStringRef() : (k.isInt() ? std::to_string(k.toInt()) : "?");
      value(k, where, depth + 1);
      value(e.value(), where + "." + key_text, depth + 1);
    }
    op('u');
  }
};

}  // namespace

void write_torch_pickle(const std::string& path, const c10::IValue& value) {
  PickleEmitter pickle;
  pickle.op(0x80);
  pickle.bytes += static_cast<char>(2);
  pickle.value(value, path + ": value", 0);
  pickle.op('.');

  AtomicFile out(path);
  // The writer's destructor finalizes an unfinished archive and may throw
  // from there (std::terminate) once a write has failed, so the callback
  // never throws: it remembers the error and reports a short write, and a
  // failed writer is released rather than destroyed (a small leak on a
  // failed save beats aborting the process).
  std::string write_error;
  auto writer = std::make_unique<caffe2::serialize::PyTorchStreamWriter>(
      [&](const void* data, size_t size) -> size_t {
        if (!write_error.empty()) return 0;
        try {
          out.write(data, size);
          return size;
        } catch (const std::exception& e) {
          write_error = e.what();
          return 0;
        }
      });
  try {
    // A writer callback (not a file name) makes the archive folder "archive",
    // as torch.save to a file object does.
    writer->writeRecord("data.pkl", pickle.bytes.data(), pickle.bytes.size());
    writer->writeRecord(".format_version", "1", 1);
    writer->writeRecord(".storage_alignment", "64", 2);
    writer->writeRecord("byteorder", "little", 6);
    for (size_t i = 0; i < pickle.storages.size(); ++i) {
      const at::Tensor& t = pickle.storages[i];
      writer->writeRecord("data/" + std::to_string(i), t.const_data_ptr(), t.nbytes());
    }
    writer->writeEndOfFile();
  } catch (const c10::Error& e) {
    (void)writer.release();
    throw std::runtime_error(write_error.empty() ? path + ": writing the archive failed: " + e.what_without_backtrace()
                                                 : write_error);
  }
  if (!write_error.empty()) {
    (void)writer.release();
    throw std::runtime_error(write_error);
  }
  writer.reset();
  out.commit();
}

}  // namespace clip::io
