# Shared build settings for the project's own targets. Third-party and generated code is
# included as SYSTEM so that our warning flags never fire on it.

set(KV_WARNING_FLAGS -Wall -Wextra -Wshadow -Wconversion -Wsign-conversion -Wnon-virtual-dtor
                     -Wold-style-cast -Woverloaded-virtual)

if(KV_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
elseif(KV_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(NOT KV_SANITIZE STREQUAL "")
  message(FATAL_ERROR "KV_SANITIZE must be '', 'address' or 'thread', not '${KV_SANITIZE}'")
endif()

# kv_warnings(target): our warning set, and -Werror when KV_WERROR is on.
function(kv_warnings target)
  target_compile_options(${target} PRIVATE ${KV_WARNING_FLAGS})
  if(KV_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# kv_library(NAME ALIAS SOURCES ...): a static library of ours with the warning set and the
# repository root on its include path (headers are included as "raft/raw_node.h").
function(kv_library name alias)
  add_library(${name} STATIC ${ARGN})
  add_library(${alias} ALIAS ${name})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR})
  kv_warnings(${name})
endfunction()
