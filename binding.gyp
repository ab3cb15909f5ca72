{
  "targets": [
    {
      "target_name": "clip_native",
      "sources": ["<!@(node scripts/list-native-sources.mjs)"],
      "include_dirs": [
        "<!(node -p \"require('path').resolve(require('node-addon-api').include_dir)\")",
        "native",
        "<!@(node scripts/find-libtorch.mjs --include-dirs)"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "_GLIBCXX_USE_CXX11_ABI=1", "<!@(node scripts/find-libtorch.mjs --defines)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17", "-std=c++17"],
      "cflags_cc": ["-std=c++20", "-fexceptions", "-frtti", "-O2", "-Wno-unused-parameter", "-Wno-missing-field-initializers"],
      "ldflags": ["<!@(node scripts/find-libtorch.mjs --libraries)"],
      "libraries": ["-ldl"]
    }
  ]
}
