// Precompiled by CMake (target_precompile_headers): every translation unit sees these first.
#pragma once
#include <torch/torch.h>
