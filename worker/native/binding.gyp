{
  "targets": [
    {
      "target_name": "neurocorr",
      "sources": ["src/addon.cc", "src/cpu.cc", "src/tile_scalar.cc", "src/tile_avx2.cc", "src/tile_avx512.cc", "src/standardize.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc!": ["-fno-exceptions"],
      "cflags_cc": ["-O3", "-std=c++17", "-ffp-contract=off", "-fno-math-errno", "-Wall", "-Wextra"],
      "xcode_settings": { "GCC_ENABLE_CPP_EXCEPTIONS": "YES" }
    }
  ]
}
