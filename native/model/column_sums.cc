#include "model/column_sums.h"

// CMakeLists.txt defines CLIP_NATIVE_KERNELS when it compiles native/kernels/*.cu with nvcc.
#ifdef CLIP_NATIVE_KERNELS
#include <c10/cuda/CUDAGuard.h>

#include "kernels/column_sum.h"
#include "model/kernel_launch.h"
#endif

namespace clip::model {

at::Tensor column_sums(const at::Tensor& rows, at::ScalarType out_type) {
#ifdef CLIP_NATIVE_KERNELS
  const auto kernel_type = [](at::ScalarType t) { return t == at::kFloat || t == at::kHalf || t == at::kBFloat16; };
  if (rows.is_cuda() && kernel_type(rows.scalar_type()) && kernel_type(out_type)) {
    const at::Tensor x = rows.contiguous();
    const int64_t n = x.size(0), cols = x.size(1);
    const c10::cuda::CUDAGuard guard(x.device());
    at::Tensor out = at::empty({cols}, x.options().dtype(out_type));
    at::Tensor workspace = at::empty({kernels::column_sum_workspace_size(n, cols)}, x.options().dtype(at::kFloat));
    check_launch(kernels::column_sum(kernel_dtype(x.scalar_type()), kernel_dtype(out_type), x.const_data_ptr(), out.mutable_data_ptr(),
                                     workspace.mutable_data_ptr<float>(), n, cols, stream_of(x)),
                 "column sum");
    return out;
  }
#endif
  return out_type == rows.scalar_type() ? rows.sum(0) : rows.sum(0, /*keepdim=*/false, at::kFloat).to(out_type);
}

}  // namespace clip::model
