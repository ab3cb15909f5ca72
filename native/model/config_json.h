// ClipConfig ⇄ the JSON the reference fixtures and our safetensors metadata use:
// {"embed_dim": 512, "image_resolution": 224, "vision_layers": 12 | [3,4,6,3], …}.
#pragma once
#include <string>

#include "model/config.h"

namespace clip::model {

/** Parses and validates; errors name the offending key. */
ClipConfig config_from_json(const std::string& text);
std::string config_to_json(const ClipConfig& config);

}  // namespace clip::model
