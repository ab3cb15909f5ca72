#!/usr/bin/env python3
"""Our Hugging Face-named safetensors in transformers' own CLIPModel, and a file transformers wrote.

    hf_roundtrip.py OURS_HF.safetensors GOLDEN.safetensors OUTDIR

1. Runs hf_clip_check.py's check (strict load into CLIPModel, golden forward within atol 1e-5).
2. Saves that CLIPModel with save_pretrained(OUTDIR) (transformers' own key naming and layout:
   OUTDIR/model.safetensors), so the test can load a file transformers wrote back into our model.
Prints one line of JSON: {"check": <hf_clip_check's JSON>, "check_exit", "saved": path,
"saved_keys": n, "transformers": version}. Exit 2 when transformers is missing.
"""
import contextlib
import io
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import open_clip_env  # noqa: E402  (before transformers, which imports torchvision where it is installed)

open_clip_env.prepare()


def main():
    ours, golden, outdir = sys.argv[1:4]
    try:
        import transformers
        from transformers import CLIPModel
    except ImportError as e:
        print(json.dumps({'ok': False, 'error': f'transformers not installed: {e}'}))
        return 2
    import hf_clip_check
    from weights_ref import read_safetensors
    argv, sys.argv = sys.argv, ['hf_clip_check.py', ours, golden]
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            code = hf_clip_check.main()
    finally:
        sys.argv = argv
    check = json.loads(buf.getvalue().strip().splitlines()[-1])
    weights, meta, _ = read_safetensors(ours)
    model = CLIPModel(hf_clip_check.hf_config(json.loads(meta['config']))).eval()
    model.load_state_dict(dict(weights), strict=True)
    model.save_pretrained(outdir, safe_serialization=True)
    saved = os.path.join(outdir, 'model.safetensors')
    print(json.dumps({'check': check, 'check_exit': code, 'saved': saved, 'saved_keys': len(read_safetensors(saved)[0]),
                      'transformers': transformers.__version__}))
    return 0


if __name__ == '__main__':
    sys.exit(main())
