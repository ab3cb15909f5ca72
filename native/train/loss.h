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

/** Rows against columns, both [rows, columns]: targets are column indices [rows] or distributions
 * [rows, columns]; the mean over rows of both cross-entropies, halved, in fp32. */
at::Tensor symmetric_cross_entropy(const at::Tensor& logits_per_image, const at::Tensor& logits_per_text, const at::Tensor& targets);

/** Multi-positive targets: row i spreads its mass evenly over the columns that carry its label. */
at::Tensor label_targets(const at::Tensor& row_labels, const at::Tensor& column_labels, const at::Device& device);

}  // namespace clip::train
