#include "train/global_loss.h"

#include <torch/autograd.h>

#include "train/loss.h"

namespace clip::train {
namespace {

class AllGatherWithGrad : public torch::autograd::Function<AllGatherWithGrad> {
 public:
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& local, dist::Group* group) {
    ctx->saved_data["rows"] = local.size(0);
    ctx->saved_data["group"] = reinterpret_cast<int64_t>(group);
    return group->all_gather(local);
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx, torch::autograd::tensor_list grads) {
    auto* group = reinterpret_cast<dist::Group*>(ctx->saved_data["group"].toInt());
    const int64_t rows = ctx->saved_data["rows"].toInt();
    // Every rank's loss sends a gradient to every rank's features: summed over the ranks (a
    // reduce-scatter; an all-reduce here, which every backend has, then this rank's slice).
    std::vector<at::Tensor> total{grads[0].contiguous().clone()};
    group->all_reduce_sum(total);
    return {total[0].narrow(0, group->rank() * rows, rows), at::Tensor()};
  }
};

}  // namespace

at::Tensor global_contrastive_loss(model::ClipImpl& model, const at::Tensor& image_features, const at::Tensor& text_features,
                                   const std::optional<at::Tensor>& labels, dist::Group& group) {
  const int64_t rows = image_features.size(0);
  const at::Tensor all_images = AllGatherWithGrad::apply(image_features, &group);
  const at::Tensor all_texts = AllGatherWithGrad::apply(text_features, &group);
  if (all_images.size(0) != rows * group.world_size())
    throw std::runtime_error("data-parallel ranks passed batches of different sizes; every rank needs the same batch size");
  // logits() normalises both sides and scales: the same values as normalising before the gather.
  const at::Tensor per_image = model.logits(image_features, all_texts).per_image;  // [B, W·B]
  const at::Tensor per_text = model.logits(all_images, text_features).per_text;    // [B, W·B]
  at::Tensor targets;
  if (labels) {
    targets = label_targets(*labels, group.all_gather(labels->to(at::kLong)), per_image.device());
  } else {
    targets = at::arange(rows, per_image.options().dtype(at::kLong)) + group.rank() * rows;
  }
  return symmetric_cross_entropy(per_image, per_text, targets);
}

}  // namespace clip::train
