#include "model/config_json.h"

#include <set>
#include <sstream>
#include <stdexcept>

#include "io/json_min.h"

namespace clip::model {
namespace {

int64_t as_int(const io::json::Value& value, const std::string& key) {
  if (value.kind != io::json::Value::Kind::Number) throw std::invalid_argument("model config: '" + key + "' must be an integer");
  try {
    size_t used = 0;
    const long long n = std::stoll(value.text, &used);
    if (used != value.text.size()) throw std::invalid_argument("not an integer");
    return n;
  } catch (const std::exception&) {
    throw std::invalid_argument("model config: '" + key + "' must be an integer, got " + value.text);
  }
}

}  // namespace

ClipConfig config_from_json(const std::string& text) {
  const io::json::Value root = io::json::parse(text);
  if (!root.is_object()) throw std::invalid_argument("model config must be a JSON object");
  ClipConfig c;
  std::set<std::string> seen;
  for (const auto& [key, value] : root.members) {
    seen.insert(key);
    if (key == "embed_dim") c.embed_dim = as_int(value, key);
    else if (key == "image_resolution") c.image_resolution = as_int(value, key);
    else if (key == "vision_width") c.vision_width = as_int(value, key);
    else if (key == "vision_patch_size") c.vision_patch_size = value.kind == io::json::Value::Kind::Null ? 0 : as_int(value, key);
    else if (key == "context_length") c.context_length = as_int(value, key);
    else if (key == "vocab_size") c.vocab_size = as_int(value, key);
    else if (key == "transformer_width") c.transformer_width = as_int(value, key);
    else if (key == "transformer_heads") c.transformer_heads = as_int(value, key);
    else if (key == "transformer_layers") c.transformer_layers = as_int(value, key);
    else if (key == "vision_layers") {
      if (value.is_array()) {
        for (size_t i = 0; i < value.items.size(); ++i) c.vision_layers.push_back(as_int(value.items[i], key + "[" + std::to_string(i) + "]"));
      } else {
        c.vision_layers = {as_int(value, key)};
      }
    } else {
      throw std::invalid_argument("model config: unknown key '" + key + "'");
    }
  }
  for (const char* required : {"embed_dim", "image_resolution", "vision_layers", "vision_width", "transformer_width", "transformer_heads",
                                "transformer_layers"}) {
    if (!seen.count(required)) throw std::invalid_argument(std::string("model config: missing key '") + required + "'");
  }
  c.validate();
  return c;
}

std::string config_to_json(const ClipConfig& c) {
  std::ostringstream out;
  out << "{\"embed_dim\": " << c.embed_dim << ", \"image_resolution\": " << c.image_resolution << ", \"vision_layers\": ";
  if (c.is_resnet()) {
    out << "[" << c.vision_layers[0] << ", " << c.vision_layers[1] << ", " << c.vision_layers[2] << ", " << c.vision_layers[3] << "]";
  } else {
    out << c.vision_layers[0];
  }
  out << ", \"vision_width\": " << c.vision_width << ", \"vision_patch_size\": ";
  if (c.is_resnet()) out << "null";
  else out << c.vision_patch_size;
  out << ", \"context_length\": " << c.context_length << ", \"vocab_size\": " << c.vocab_size << ", \"transformer_width\": " << c.transformer_width
      << ", \"transformer_heads\": " << c.transformer_heads << ", \"transformer_layers\": " << c.transformer_layers << "}";
  return out.str();
}

}  // namespace clip::model
