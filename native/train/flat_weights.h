// The trainable weights of the matrix products and convolutions, kept in one fp32 buffer. Under
// autocast every product casts its fp32 weight to bf16/fp16 itself and casts the gradient back: two
// kernels per weight and step (about 400 for ViT-B/32), most too small to fill a GPU. Here a step casts
// the whole buffer with one kernel, and backward joins the half-precision gradients with one
// concatenation and casts them back with one more. The numbers are autocast's, bit for bit: the same
// rounding of the same fp32 values, and gradients cast up from the same half-precision products.
#pragma once
#include <ATen/ATen.h>

#include <vector>

#include "model/compute_weights.h"

namespace clip::train {

class FlatWeights {
 public:
  /**
   * Moves each parameter's values into the buffer and makes its data a view of it (same shape,
   * strides and values; the Parameter objects, and so optimizer state keyed on them, stay). Takes the
   * dense fp32 parameters on the first one's device; others are left to autocast.
   */
  FlatWeights(const std::vector<at::Tensor>& params, at::ScalarType compute_type);

  /** Whether every parameter still views the buffer: false once something replaced a parameter's data. */
  bool intact() const;
  /** The half-precision weights for one forward, differentiable back to the buffer. */
  model::ComputeWeights cast() const;
  /** After backward: each parameter's gradient becomes its slice of the buffer's gradient (plus any
   * gradient it received directly, from a use that did not go through compute_weight()). */
  void publish_gradients();
  void clear_gradient();
  size_t size() const { return params_.size(); }

 private:
  std::vector<at::Tensor> params_;
  std::vector<int64_t> numels_, offsets_;
  std::vector<const void*> addresses_;
  at::Tensor master_;  // 1-D fp32, requires grad: the leaf the casts' gradients reach
  at::ScalarType compute_type_;
};

}  // namespace clip::train
