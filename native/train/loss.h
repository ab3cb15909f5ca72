// CLIP's symmetric contrastive loss, with multi-positive targets for labelled batches.
#pragma once
#include <ATen/ATen.h>

#include <optional>

namespace clip::train {

/**
 * (CE(logits_per_image, T) + CE(logits_per_text, Tᵀ)) / 2, computed in fp32.
 * Without labels T is the identity (the reference: targets arange(n)). With labels, every pair with
 * the same label is a positive: T[i] spreads its mass over them, so two photos of one class are not
 * pushed apart as the blog's recipe does.
 */
at::Tensor contrastive_loss(const at::Tensor& logits_per_image, const at::Tensor& logits_per_text,
                            const std::optional<at::Tensor>& labels);

}  // namespace clip::train
