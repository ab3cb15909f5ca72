#include "model/config_json.h"

#include <array>
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

double as_number(const io::json::Value& value, const std::string& key) {
  if (value.kind != io::json::Value::Kind::Number) throw std::invalid_argument("model config: '" + key + "' must be a number");
  try {
    size_t used = 0;
    const double x = std::stod(value.text, &used);
    if (used != value.text.size()) throw std::invalid_argument("not a number");
    return x;
  } catch (const std::exception&) {
    throw std::invalid_argument("model config: '" + key + "' must be a number, got " + value.text);
  }
}

std::array<double, 3> as_triple(const io::json::Value& value, const std::string& key) {
  if (!value.is_array() || value.items.size() != 3) throw std::invalid_argument("model config: '" + key + "' must be a list of 3 numbers");
  std::array<double, 3> out{};
  for (size_t i = 0; i < 3; ++i) out[i] = as_number(value.items[i], key + "[" + std::to_string(i) + "]");
  return out;
}

std::string as_string(const io::json::Value& value, const std::string& key) {
  if (!value.is_string()) throw std::invalid_argument("model config: '" + key + "' must be a string");
  return value.text;
}

Activation as_activation(const io::json::Value& value, const std::string& key) {
  const std::string name = as_string(value, key);
  if (name == "quick_gelu") return Activation::kQuickGelu;
  if (name == "gelu") return Activation::kGelu;
  throw std::invalid_argument("model config: '" + key + "' must be quick_gelu or gelu, got '" + name + "' (no other activation can be built)");
}

// Shortest round trip of a double: what was read is what is written.
std::string number_text(double x) {
  std::ostringstream out;
  out.precision(17);
  out << x;
  return out.str();
}

std::string triple_text(const std::array<double, 3>& v) {
  std::ostringstream out;
  out << "[" << number_text(v[0]) << ", " << number_text(v[1]) << ", " << number_text(v[2]) << "]";
  return out.str();
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
    else if (key == "activation") c.activation = as_activation(value, key);
    else if (key == "vision_heads") c.vision_head_count = as_int(value, key);
    else if (key == "vision_mlp_width") c.vision_mlp_width = as_int(value, key);
    else if (key == "transformer_mlp_width") c.transformer_mlp_width = as_int(value, key);
    else if (key == "image_mean") c.image_mean = as_triple(value, key);
    else if (key == "image_std") c.image_std = as_triple(value, key);
    else if (key == "image_resize_mode") c.image_resize_mode = as_string(value, key);
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
      << ", \"transformer_heads\": " << c.transformer_heads << ", \"transformer_layers\": " << c.transformer_layers;
  // What other families need, only where it differs from OpenAI's: the keys' documented defaults
  // (src/model/config.ts), so an OpenAI-shaped configuration reads as it always has.
  const ClipConfig openai;
  if (c.activation != openai.activation) out << ", \"activation\": \"" << activation_name(c.activation) << "\"";
  if (c.vision_heads() != c.reference_vision_heads()) out << ", \"vision_heads\": " << c.vision_heads();
  if (!c.is_resnet() && c.vision_mlp() != 4 * c.vision_width) out << ", \"vision_mlp_width\": " << c.vision_mlp();
  if (c.transformer_mlp() != 4 * c.transformer_width) out << ", \"transformer_mlp_width\": " << c.transformer_mlp();
  if (c.image_mean != openai.image_mean) out << ", \"image_mean\": " << triple_text(c.image_mean);
  if (c.image_std != openai.image_std) out << ", \"image_std\": " << triple_text(c.image_std);
  if (c.image_resize_mode != openai.image_resize_mode) out << ", \"image_resize_mode\": " << io::json::quote(c.image_resize_mode);
  out << "}";
  return out.str();
}

}  // namespace clip::model
