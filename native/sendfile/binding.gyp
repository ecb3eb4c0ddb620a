{
  "targets": [
    {
      "target_name": "sendfile",
      "sources": ["sendfile.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "libraries": ["-ldl"]
    }
  ]
}
