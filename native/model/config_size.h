// How large a configuration makes a model, known before it is built.
#pragma once

#include "model/config.h"

namespace clip::model {

/**
 * A lower bound on the parameters `config` builds, in double arithmetic (no overflow): every weight
 * matrix and embedding, not the biases and norms. Lets a load refuse a configuration that would
 * allocate far more than its file holds before anything is built.
 */
double minimum_parameters(const ClipConfig& config);

}  // namespace clip::model
