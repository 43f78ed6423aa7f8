# Fails when a source file includes a layer above its own:
#   compiler/ must not include runtime/ or cli/ (schemas arrive as a SchemaRegistry),
#   runtime/ must not include cli/,
#   kernels/ is a leaf: it includes none of compiler/, runtime/, cli/.
# Run by the plinth_layering target: cmake -DROOT=<source dir> -P check_layering.cmake
set(violations "")
foreach(rule "compiler;runtime/|cli/|lsp/" "runtime;cli/|lsp/" "kernels;compiler/|runtime/|cli/|lsp/" "lsp;runtime/|cli/")
  list(GET rule 0 layer)
  list(GET rule 1 forbidden)
  file(GLOB_RECURSE files "${ROOT}/${layer}/*.h" "${ROOT}/${layer}/*.cpp" "${ROOT}/${layer}/*.def" "${ROOT}/${layer}/*.cu")
  foreach(f ${files})
    file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<](${forbidden})")
    foreach(line ${lines})
      file(RELATIVE_PATH rel "${ROOT}" "${f}")
      string(APPEND violations "  ${rel}: ${line}\n")
    endforeach()
  endforeach()
endforeach()
if(violations)
  message(FATAL_ERROR "layering violated (arrows point down: cli -> runtime -> compiler; lsp -> compiler; kernels is a leaf):\n${violations}")
endif()
