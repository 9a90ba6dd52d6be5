{
  "targets": [
    {
      "target_name": "buttervolume",
      "sources": [
        "native/core/sys_error.cc",
        "native/core/path.cc",
        "native/core/uuid.cc",
        "native/core/beneath.cc",
        "native/core/beneath_batch.cc",
        "native/core/tree_search.cc",
        "native/core/filesystem.cc",
        "native/core/subvolume.cc",
        "native/core/flags.cc",
        "native/core/lock.cc",
        "native/core/rename.cc",
        "native/core/crc32c.cc",
        "native/core/send_stream.cc",
        "native/core/decompress.cc",
        "native/core/receive_tree.cc",
        "native/core/receive_sources.cc",
        "native/core/receive_space.cc",
        "native/core/receive.cc",
        "native/core/queue_source.cc",
        "native/core/send.cc",
        "native/core/send_prefetch.cc",
        "native/core/quota.cc",
        "native/core/extent_usage.cc",
        "native/napi/addon.cc",
        "native/napi/beneath_bindings.cc",
        "native/napi/beneath_batch_bindings.cc",
        "native/napi/convert.cc",
        "native/napi/errors.cc",
        "native/napi/lock_handle.cc",
        "native/napi/send_stream_dump.cc",
        "native/napi/stream_jobs.cc",
        "native/napi/quota_bindings.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "BV_SOURCE_HASH=\"<!(node scripts/native-hash.cjs)\""
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-Wall", "-Wextra", "-Wno-missing-field-initializers"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
