"""Make `import open_clip` work where torchvision's C++ operators cannot be loaded.

open_clip imports torchvision (for its image transforms). A torchvision wheel built against another
torch (here pip's CUDA torchvision 0.28 beside the CPU torch 2.13) cannot load its `_C` extension;
its Python side then still registers fake (meta) kernels for some `torchvision::` operators and fails
with "operator torchvision::nms does not exist". CLIP never calls those operators (detection boxes,
RoI pooling, deformable convolutions), so this module, imported BEFORE torchvision or open_clip:

- does nothing when torchvision's `_C` extension loads (or the operators already exist);
- otherwise defines each `torchvision::` operator that torchvision's registration modules name, with
  torchvision's own schema, and CPU/CUDA kernels that raise if ever called, and says so on stderr.

torchvision's ops stay unusable (`torchvision.extension._has_ops()` stays False, so
`torchvision.ops.nms` and friends raise torchvision's own "Couldn't load custom C++ ops"); only the
import is unblocked. Usage: `import open_clip_env; open_clip_env.prepare()` then `import open_clip`.
"""
import glob
import importlib.util
import os
import re
import sys

# The operators' schemas as torchvision's C++ side declares them (torchvision/csrc/ops/*.cpp,
# TORCH_LIBRARY_FRAGMENT(torchvision, m) { m.def(...) }).
SCHEMAS = {
    'nms': 'nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'qnms': 'qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor',
    'roi_align': 'roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor',
    '_roi_align_backward': '_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, int sampling_ratio, bool aligned) -> Tensor',
    'qroi_align': 'qroi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor',
    'roi_pool': 'roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) -> (Tensor, Tensor)',
    '_roi_pool_backward': '_roi_pool_backward(Tensor grad, Tensor rois, Tensor argmax, float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor',
    'ps_roi_align': 'ps_roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio) -> (Tensor, Tensor)',
    '_ps_roi_align_backward': '_ps_roi_align_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, SymInt pooled_height, SymInt pooled_width, int sampling_ratio, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor',
    'ps_roi_pool': 'ps_roi_pool(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, SymInt pooled_width) -> (Tensor, Tensor)',
    '_ps_roi_pool_backward': '_ps_roi_pool_backward(Tensor grad, Tensor rois, Tensor channel_mapping, float spatial_scale, SymInt pooled_height, SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width) -> Tensor',
    'deform_conv2d': 'deform_conv2d(Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> Tensor',
    '_deform_conv2d_backward': '_deform_conv2d_backward(Tensor grad, Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, SymInt groups, SymInt offset_groups, bool use_mask) -> (Tensor, Tensor, Tensor, Tensor, Tensor)',
}

# The modules whose import-time registrations name operators (torchvision/__init__.py imports them).
REGISTRATION_MODULES = ('_meta_registrations.py', '_autograd_registrations.py')

_library = None  # the torch.library.Library that holds the stand-ins (kept alive for the process)
standins = []  # names of the operators this module defined (empty: nothing was needed)


def _op_exists(torch, name):
    try:
        torch._C._dispatch_has_kernel_for_dispatch_key(f'torchvision::{name}', 'CPU')
        return True
    except RuntimeError:
        return False


def _named_ops(package_dir):
    names = set()
    for module in REGISTRATION_MODULES:
        try:
            with open(os.path.join(package_dir, module), encoding='utf-8') as f:
                source = f.read()
        except OSError:
            continue
        names.update(re.findall(r'torchvision::(\w+)', source))
        # register_meta("roi_align") style: the op name without the namespace.
        names.update(re.findall(r'register_meta\(\s*["\'](\w+)["\']', source))
    return names


def _raiser(name, reason):
    def kernel(*args, **kwargs):
        raise RuntimeError(
            f'torchvision::{name} is a stand-in defined by test/python/open_clip_env.py (torchvision\'s C++ '
            f'extension could not be loaded: {reason}); it cannot run')
    return kernel


def prepare():
    """Defines the stand-ins if torchvision needs them; returns their names (an empty list: none needed)."""
    global _library
    if _library is not None or 'torchvision' in sys.modules:
        return list(standins)
    spec = importlib.util.find_spec('torchvision')
    if spec is None or not spec.submodule_search_locations:
        return []  # no torchvision: open_clip's own import error says so
    import torch
    package_dir = list(spec.submodule_search_locations)[0]
    extensions = sorted(glob.glob(os.path.join(package_dir, '_C*.so')) + glob.glob(os.path.join(package_dir, '_C*.pyd')))
    reason = 'no _C extension in ' + package_dir
    for extension in extensions:
        try:
            torch.ops.load_library(extension)
            return []  # the real operators are there: torchvision imports on its own
        except (OSError, RuntimeError, ImportError) as e:
            reason = f'{type(e).__name__}: {e}'.strip()
    wanted = sorted(_named_ops(package_dir))
    missing = [name for name in wanted if not _op_exists(torch, name)]
    if not missing:
        return []
    unknown = [name for name in missing if name not in SCHEMAS]
    _library = torch.library.Library('torchvision', 'FRAGMENT')
    for name in missing:
        if name in unknown:
            continue
        _library.define(SCHEMAS[name])
        for key in ('CPU', 'CUDA'):
            _library.impl(name, _raiser(name, reason), key)
        standins.append(name)
    print(
        f'open_clip_env: WARNING: torchvision {_version(package_dir)} cannot load its C++ operators beside torch '
        f'{torch.__version__} ({reason.splitlines()[0][:200]}); defined raising stand-ins for '
        f'torchvision::{{{", ".join(standins)}}} so that torchvision and open_clip import. CLIP never calls them; '
        'torchvision.ops stays unavailable.'
        + (f' Operators named without a known schema (not defined): {", ".join(unknown)}.' if unknown else ''),
        file=sys.stderr, flush=True)
    return list(standins)


def _version(package_dir):
    try:
        with open(os.path.join(package_dir, 'version.py'), encoding='utf-8') as f:
            found = re.search(r"__version__\s*=\s*['\"]([^'\"]+)", f.read())
        return found.group(1) if found else '(unknown version)'
    except OSError:
        return '(unknown version)'


if __name__ == '__main__':
    names = prepare()
    import open_clip  # noqa: F401
    print(f'open_clip {open_clip.__version__} imports; stand-ins: {names or "none needed"}')
