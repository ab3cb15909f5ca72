#include "train/loss.h"

namespace clip::train {

at::Tensor label_targets(const at::Tensor& row_labels, const at::Tensor& column_labels, const at::Device& device) {
  at::Tensor same = row_labels.to(device).unsqueeze(1).eq(column_labels.to(device).unsqueeze(0)).to(at::kFloat);
  return same / same.sum(1, /*keepdim=*/true);
}

at::Tensor symmetric_cross_entropy(const at::Tensor& logits_per_image, const at::Tensor& logits_per_text, const at::Tensor& targets) {
  return (at::cross_entropy_loss(logits_per_image.to(at::kFloat), targets) + at::cross_entropy_loss(logits_per_text.to(at::kFloat), targets)) / 2;
}

at::Tensor contrastive_loss(const at::Tensor& logits_per_image, const at::Tensor& logits_per_text,
                            const std::optional<at::Tensor>& labels) {
  const int64_t n = logits_per_image.size(0);
  // The relation is symmetric, so the text side uses the same targets.
  const at::Tensor targets = labels ? label_targets(*labels, *labels, logits_per_image.device())
                                    : at::arange(n, logits_per_image.options().dtype(at::kLong));
  return symmetric_cross_entropy(logits_per_image, logits_per_text, targets);
}

}  // namespace clip::train
