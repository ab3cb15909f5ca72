#include "train/loss.h"

namespace clip::train {

at::Tensor contrastive_loss(const at::Tensor& logits_per_image, const at::Tensor& logits_per_text,
                            const std::optional<at::Tensor>& labels) {
  const at::Tensor per_image = logits_per_image.to(at::kFloat);
  const at::Tensor per_text = logits_per_text.to(at::kFloat);
  const int64_t n = per_image.size(0);
  if (!labels) {
    at::Tensor targets = at::arange(n, per_image.options().dtype(at::kLong));
    return (at::cross_entropy_loss(per_image, targets) + at::cross_entropy_loss(per_text, targets)) / 2;
  }
  at::Tensor same = labels->to(per_image.device()).unsqueeze(1).eq(labels->to(per_image.device()).unsqueeze(0)).to(at::kFloat);
  at::Tensor targets = same / same.sum(1, /*keepdim=*/true);
  // The relation is symmetric, so the text side uses the same matrix.
  return (at::cross_entropy_loss(per_image, targets) + at::cross_entropy_loss(per_text, targets)) / 2;
}

}  // namespace clip::train
