# connector_embed_text(TARGET SYMBOL FILE): compiles FILE's text into TARGET as
# `extern const char SYMBOL[]` (in namespace connector::embedded). CMake re-runs when FILE changes.
function(connector_embed_text target symbol file)
  file(READ ${file} content)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${file})
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_${symbol}.cpp)
  file(WRITE ${out}.tmp
    "// Generated from ${file}; do not edit.\n"
    "namespace connector::embedded {\n"
    "extern const char ${symbol}[];\n"
    "const char ${symbol}[] = R\"embedded_text(${content})embedded_text\";\n"
    "}\n")
  file(COPY_FILE ${out}.tmp ${out} ONLY_IF_DIFFERENT)
  target_sources(${target} PRIVATE ${out})
endfunction()
