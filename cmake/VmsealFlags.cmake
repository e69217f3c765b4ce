# Compiler flags shared by every target, collected on one interface target
# that every library, program and test links.
add_library(vmseal_flags INTERFACE)

target_compile_definitions(vmseal_flags INTERFACE _GNU_SOURCE)
target_include_directories(vmseal_flags INTERFACE ${PROJECT_SOURCE_DIR}/src)

# Strict warnings, all errors, in every preset (shared/STYLE.md §2, §10).
target_compile_options(vmseal_flags INTERFACE
  -Wall -Wextra -Werror
  -Wformat=2 -Wformat-security
  -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wold-style-definition
  -Wvla -Wpointer-arith -Wundef -Wwrite-strings
  -Wimplicit-fallthrough -Wnull-dereference -Wcast-align
  -Wno-missing-field-initializers
  -fno-strict-aliasing -fno-common
  -fstack-protector-strong
  # __FILE__ relative to the tree: errors and logs say src/core/buf.c:42.
  -fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=
)
if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
  target_compile_options(vmseal_flags INTERFACE -Wduplicated-cond -Wlogical-op)
endif()

if(VMSEAL_SANITIZE)
  set(VMSEAL_SAN_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=all
      -fno-omit-frame-pointer)
  target_compile_options(vmseal_flags INTERFACE ${VMSEAL_SAN_FLAGS})
  target_link_options(vmseal_flags INTERFACE ${VMSEAL_SAN_FLAGS})
endif()

if(VMSEAL_HARDEN)
  target_compile_definitions(vmseal_flags INTERFACE _FORTIFY_SOURCE=2)
  target_link_options(vmseal_flags INTERFACE -Wl,-z,relro,-z,now -Wl,-z,noexecstack)
endif()

if(VMSEAL_FUZZ)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "VMSEAL_FUZZ needs clang (libFuzzer); use the fuzz or asan preset")
  endif()
  # Coverage instrumentation for all code, so that libFuzzer sees the
  # branches of the library under test, not only the target's own. The
  # sanitizer runtime supplies the hooks for programs without libFuzzer.
  target_compile_options(vmseal_flags INTERFACE -fsanitize=fuzzer-no-link)
endif()
