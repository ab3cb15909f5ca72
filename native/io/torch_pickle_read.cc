// read_torch_pickle: the zip container torch.save writes, unpickled with an
// allow-list of globals. Anything else is refused by name, which is what
// keeps a stranger's checkpoint from running code. unpickle_torch_record is
// the same machine for TorchScript archives (torchscript.cc).
#include "weights.h"

#include "dtype_names.h"
#include "torch_pickle.h"
#include "zip_records.h"

#include <ATen/ATen.h>
#include <caffe2/serialize/inline_container.h>

#include <stdexcept>
#include <unordered_map>

namespace clip::io {
namespace {

using pickle::Object;
using pickle::Ref;
using Kind = Object::Kind;

constexpr int kMaxNesting = 200;
// Objects a conversion may produce: the memo lets a few bytes refer to one list many times over
// ("billion laughs"), which the conversion would copy each time.
constexpr size_t kMaxConvertedObjects = 1'000'000;

Ref make_global(const std::string& full_name) {
  auto g = Object::make(Kind::Global);
  g->text = full_name;
  return g;
}

bool is_storage_class(const std::string& full) {
  for (const char* prefix : {"torch.", "torch.cuda.", "torch.storage."}) {
    std::string p(prefix);
    if (full.rfind(p, 0) == 0 && dtype_from_storage_class(full.substr(p.size()))) {
      return p != "torch.storage." || full == "torch.storage.UntypedStorage";
    }
  }
  return false;
}

std::string storage_class_of(const std::string& full) { return full.substr(full.rfind('.') + 1); }

int64_t as_int(const Ref& o, const char* what) {
  if (o->kind != Kind::Int) throw std::runtime_error(std::string(what) + " is a " + pickle::kind_name(o->kind) + ", not an int");
  return o->integer;
}

std::vector<int64_t> as_int_tuple(const Ref& o, const char* what) {
  if (o->kind != Kind::Tuple && o->kind != Kind::List)
    throw std::runtime_error(std::string(what) + " is a " + pickle::kind_name(o->kind) + ", not a tuple");
  std::vector<int64_t> v;
  for (const auto& item : o->items) v.push_back(as_int(item, what));
  return v;
}

// A view into a shared storage, after checking it stays inside it.
at::Tensor tensor_on_storage(const Ref& storage, const Ref& offset_obj, const Ref& size_obj, const Ref& stride_obj) {
  if (storage->kind != Kind::Storage) throw std::runtime_error("tensor rebuilt from a " + std::string(pickle::kind_name(storage->kind)) + ", not a storage");
  int64_t offset = as_int(offset_obj, "storage offset");
  auto sizes = as_int_tuple(size_obj, "tensor size");
  auto strides = as_int_tuple(stride_obj, "tensor stride");
  if (sizes.size() != strides.size()) throw std::runtime_error("tensor size and stride have different lengths");
  if (offset < 0) throw std::runtime_error("negative storage offset");
  const uint64_t itemsize = c10::elementSize(storage->storage_dtype);
  const uint64_t capacity = storage->storage.nbytes() / itemsize;
  bool empty = false;
  for (size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0 || strides[d] < 0) throw std::runtime_error("negative tensor size or stride");
    empty = empty || sizes[d] == 0;
  }
  // The last element the view touches must lie inside the storage; checked
  // term by term so a crafted size cannot overflow the sum.
  uint64_t last = static_cast<uint64_t>(offset);
  for (size_t d = 0; d < sizes.size() && !empty; ++d) {
    const uint64_t span = static_cast<uint64_t>(sizes[d] - 1), stride = static_cast<uint64_t>(strides[d]);
    if (stride != 0 && span > (capacity - std::min(last, capacity)) / stride) {
      last = capacity;
      break;
    }
    last += span * stride;
  }
  if (!empty && last >= capacity)
    throw std::runtime_error("tensor of size " + c10::str(at::IntArrayRef(sizes)) + " and stride " +
                             c10::str(at::IntArrayRef(strides)) + " at offset " + std::to_string(offset) +
                             " reaches past its storage of " + std::to_string(capacity) + " elements");
  // A view with more elements than its storage repeats elements (zero strides). Weights never do, and
  // a crafted one would make the first contiguous copy allocate without bound.
  uint64_t numel = 1;
  for (int64_t size : sizes) {
    if (size != 0 && numel > capacity / static_cast<uint64_t>(size)) {
      numel = capacity + 1;
      break;
    }
    numel *= static_cast<uint64_t>(size);
  }
  if (numel > capacity)
    throw std::runtime_error("tensor of size " + c10::str(at::IntArrayRef(sizes)) + " has more elements than its storage of " +
                             std::to_string(capacity) + " (a repeating view); refused");
  at::Tensor t = at::empty({0}, at::TensorOptions().dtype(storage->storage_dtype));
  t.set_(storage->storage, offset, sizes, strides);
  return t;
}

bool is_torchscript_class(const std::string& module) {
  // torch.classes are C++ classes with native __setstate__ code: never data.
  const bool torchscript = module == "__torch__" || module.rfind("__torch__.", 0) == 0;
  return torchscript && module.rfind("__torch__.torch.classes", 0) != 0;
}

// What TorchScript's pickler adds for typed containers: the value itself is the data.
constexpr const char* kTorchScriptContainerGlobals[] = {
    "torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist", "torch.jit._pickle.build_doublelist",
    "torch.jit._pickle.build_boollist", "torch.jit._pickle.build_tensorlist"};

class TorchPickleHooks final : public pickle::PickleHooks {
 public:
  TorchPickleHooks(ZipRecords& zip, std::string storage_dir, PickleFlavour flavour)
      : zip_(zip), storage_dir_(std::move(storage_dir)), flavour_(flavour) {}

  Ref find_class(const std::string& module, const std::string& name) override {
    const std::string full = module + "." + name;
    if (flavour_ == PickleFlavour::kTorchScript) {
      if (is_torchscript_class(module)) return make_global(full);
      for (const char* g : kTorchScriptContainerGlobals)
        if (full == g) return make_global(full);
    }
    static const char* const allowed[] = {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch.device",
        "torch.Size",
        "_codecs.encode",  // how protocol 2 spells a bytes object
    };
    for (const char* a : allowed)
      if (full == a) return make_global(full);
    if (is_storage_class(full)) return make_global(full);
    if (module == "torch" && dtype_from_torch_attribute(name)) return make_global(full);
    throw std::runtime_error("refusing pickle global '" + full + "' (only tensors, storages and OrderedDict may be loaded)");
  }

  Ref call(const Ref& callable, const Ref& args) override {
    if (callable->kind != Kind::Global)
      throw std::runtime_error("refusing to call a " + std::string(pickle::kind_name(callable->kind)));
    const std::string& f = callable->text;
    const auto& a = args->items;
    auto want = [&](size_t lo, size_t hi) {
      if (a.size() < lo || a.size() > hi)
        throw std::runtime_error(f + " called with " + std::to_string(a.size()) + " arguments");
    };
    if (f == "collections.OrderedDict") {
      want(0, 0);
      return Object::make(Kind::Dict);
    }
    if (flavour_ == PickleFlavour::kTorchScript) {
      if (f.rfind("__torch__.", 0) == 0 && is_torchscript_class(f.substr(0, f.rfind('.')))) {
        want(0, 0);  // NEWOBJ of a module with no arguments; BUILD gives it its attributes
        auto o = Object::make(Kind::Record);
        o->text = f;
        return o;
      }
      if (f == "torch.jit._pickle.restore_type_tag") {
        want(2, 2);
        return a[0];
      }
      if (f.rfind("torch.jit._pickle.build_", 0) == 0) {
        want(1, 1);
        if (a[0]->kind != Kind::List) throw std::runtime_error(f + " of a " + pickle::kind_name(a[0]->kind));
        return a[0];
      }
    }
    if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") {
      // (storage, offset, size, stride[, requires_grad, backward_hooks[, metadata]])
      want(4, 7);
      auto o = Object::make(Kind::Tensor);
      o->tensor = tensor_on_storage(a[0], a[1], a[2], a[3]);
      return o;
    }
    if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state") {
      // (data, requires_grad, backward_hooks[, state]): a Parameter is its data here.
      want(3, 4);
      if (a[0]->kind != Kind::Tensor) throw std::runtime_error(f + " of a non-tensor");
      return a[0];
    }
    if (f == "torch.device") {
      want(1, 2);
      auto o = Object::make(Kind::String);
      if (a[0]->kind != Kind::String) throw std::runtime_error("torch.device of a non-string");
      o->text = a[0]->text;
      if (a.size() == 2 && a[1]->kind == Kind::Int) o->text += ":" + std::to_string(a[1]->integer);
      return o;
    }
    if (f == "torch.Size") {
      want(1, 1);
      auto o = Object::make(Kind::Tuple);
      for (int64_t d : as_int_tuple(a[0], "torch.Size")) {
        auto i = Object::make(Kind::Int);
        i->integer = d;
        o->items.push_back(i);
      }
      return o;
    }
    if (f == "_codecs.encode") {
      want(2, 2);
      if (a[0]->kind != Kind::String) throw std::runtime_error("_codecs.encode of a non-string");
      auto o = Object::make(Kind::Bytes);
      o->text = latin1_from_utf8(a[0]->text);
      return o;
    }
    throw std::runtime_error("refusing to call '" + f + "'");
  }

  Ref persistent_load(const Ref& pid) override {
    // ('storage', storage class, key, location, numel)
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::String ||
        pid->items[0]->text != "storage")
      throw std::runtime_error("unsupported persistent id (expected ('storage', type, key, location, numel))");
    const Ref& type = pid->items[1];
    const Ref& key = pid->items[2];
    if (type->kind != Kind::Global || !is_storage_class(type->text))
      throw std::runtime_error("persistent id names no storage class");
    if (key->kind != Kind::String) throw std::runtime_error("persistent id key is not a string");
    const c10::ScalarType dtype = *dtype_from_storage_class(storage_class_of(type->text));
    const int64_t numel = as_int(pid->items[4], "storage numel");

    auto o = Object::make(Kind::Storage);
    o->storage_dtype = dtype;
    auto cached = storages_.find(key->text);
    if (cached != storages_.end()) {
      o->storage = cached->second;  // the same bytes, shared: views of one tensor stay views
    } else {
      o->storage = zip_.storage(storage_dir_ + key->text);
      storages_.emplace(key->text, o->storage);
    }
    if (numel < 0 || static_cast<uint64_t>(numel) * c10::elementSize(dtype) > o->storage.nbytes())
      throw std::runtime_error("storage " + storage_dir_ + key->text + " holds " + std::to_string(o->storage.nbytes()) +
                               " bytes, fewer than its " + std::to_string(numel) + " elements need");
    return o;
  }

  void build(const Ref& object, const Ref& state) override {
    // state_dict() OrderedDicts carry a `_metadata` attribute (module versions); it is not data.
    if (object->kind == Kind::Dict) return;
    if (object->kind == Kind::Record) return build_record(object, state);
    throw std::runtime_error("refusing BUILD on a " + std::string(pickle::kind_name(object->kind)));
  }

 private:
  static std::string latin1_from_utf8(const std::string& s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      auto c = static_cast<unsigned char>(s[i]);
      if (c < 0x80) out += static_cast<char>(c);
      else if ((c & 0xE0) == 0xC0 && i + 1 < s.size() && c <= 0xC3)
        out += static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F));
      else throw std::runtime_error("_codecs.encode: text is not latin-1");
    }
    return out;
  }

  // A TorchScript module's attributes come as one dict. Any other state is what a class's own
  // __getstate__ wrote, which only its __setstate__ code could interpret: refused, never run.
  static void build_record(const Ref& record, const Ref& state) {
    if (state->kind != Kind::Dict)
      throw std::runtime_error("'" + record->text + "' carries a " + pickle::kind_name(state->kind) +
                               " as its state, which only its own __setstate__ code could read; refused");
    if (!record->entries.empty()) throw std::runtime_error("'" + record->text + "' is built twice");
    for (const auto& [key, value] : state->entries) {
      if (key->kind != Kind::String) throw std::runtime_error("'" + record->text + "' has an attribute named by a " + pickle::kind_name(key->kind));
      record->entries.emplace_back(key, value);
    }
  }

  ZipRecords& zip_;
  const std::string storage_dir_;
  const PickleFlavour flavour_;
  std::unordered_map<std::string, c10::Storage> storages_;
};

c10::IValue to_ivalue(const Ref& o, int depth, size_t& converted) {
  if (depth > kMaxNesting) throw std::runtime_error("pickle nests more than " + std::to_string(kMaxNesting) + " levels deep (or refers to itself)");
  if (++converted > kMaxConvertedObjects)
    throw std::runtime_error("pickle expands to more than " + std::to_string(kMaxConvertedObjects) + " objects (one object referred to many times over); refused as a resource bomb");
  switch (o->kind) {
    case Kind::None: return {};
    case Kind::Bool: return o->boolean;
    case Kind::Int: return o->integer;
    case Kind::Float: return o->floating;
    case Kind::String:
    case Kind::Bytes: return o->text;
    case Kind::Tensor: return o->tensor;
    case Kind::Tuple: {
      std::vector<c10::IValue> items;
      for (const auto& i : o->items) items.push_back(to_ivalue(i, depth + 1, converted));
      return c10::ivalue::Tuple::create(std::move(items));
    }
    case Kind::List: {
      c10::impl::GenericList list(c10::AnyType::get());
      for (const auto& i : o->items) list.push_back(to_ivalue(i, depth + 1, converted));
      return list;
    }
    case Kind::Dict: {
      c10::impl::GenericDict dict(c10::AnyType::get(), c10::AnyType::get());
      for (const auto& [k, v] : o->entries) {
        if (k->kind != Kind::String && k->kind != Kind::Int && k->kind != Kind::Float && k->kind != Kind::Bool)
          throw std::runtime_error(std::string("dict key of type ") + pickle::kind_name(k->kind) + " is not supported");
        dict.insert_or_assign(to_ivalue(k, depth + 1, converted), to_ivalue(v, depth + 1, converted));
      }
      return dict;
    }
    case Kind::Global: {
      auto dot = o->text.rfind('.');
      if (o->text.rfind("torch.", 0) == 0 && dtype_from_torch_attribute(o->text.substr(dot + 1))) return o->text;
      throw std::runtime_error("a bare '" + o->text + "' is not data");
    }
    case Kind::Storage: throw std::runtime_error("a bare storage (not wrapped in a tensor) is not supported");
    case Kind::Record: throw std::runtime_error("a TorchScript object ('" + o->text + "') is not data here");
  }
  return {};
}

}  // namespace

pickle::Ref unpickle_torch_record(ZipRecords& zip, const std::string& record, const std::string& storage_dir, PickleFlavour flavour) {
  TorchPickleHooks hooks(zip, storage_dir, flavour);
  try {
    return pickle::unpickle(zip.text(record), hooks);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(record + ": " + e.what());
  }
}

c10::IValue read_torch_pickle(const std::string& path) {
  try {
    ZipRecords zip(path);
    if (zip.has("byteorder") && zip.text("byteorder") != "little")
      throw std::runtime_error("big-endian checkpoints are not supported");
    if (!zip.has("data.pkl")) throw std::runtime_error("no data.pkl record (not a torch.save file)");
    size_t converted = 0;
    return to_ivalue(unpickle_torch_record(zip, "data.pkl", "data/", PickleFlavour::kTorchSave), 0, converted);
  } catch (const c10::Error& e) {
    throw std::runtime_error(path + ": " + e.what_without_backtrace());
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

}  // namespace clip::io
