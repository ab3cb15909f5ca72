// The contrastive loss over the global batch of a data-parallel group (open_clip's
// gather_with_grad with local_loss): each rank's rows against every rank's columns.
#pragma once
#include <ATen/ATen.h>

#include <optional>

#include "distributed/process_group.h"
#include "model/clip.h"

namespace clip::train {

/**
 * Every rank's features are gathered with their gradient (all-gather forward; backward: the sum over
 * the ranks of the gradient each rank's loss sends to them, this rank's slice kept), and this rank's
 * B rows are scored against all W·B columns; labels are gathered too for multi-positive targets. With
 * the gradients averaged over the ranks, the update equals one process's on the W·B batch. All ranks
 * must pass batches of the same size.
 */
at::Tensor global_contrastive_loss(model::ClipImpl& model, const at::Tensor& image_features, const at::Tensor& text_features,
                                   const std::optional<at::Tensor>& labels, dist::Group& group);

}  // namespace clip::train
