# Warning set and sanitizer switches shared by every dsv4 target.
# GCC 12 and Clang 14 must both build warning-clean with these (CI builds with -Werror via
# the presets' DSV4_WERROR cache variable).
option(DSV4_WERROR "Treat warnings as errors" OFF)

function(dsv4_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow
    -Wnon-virtual-dtor -Wcast-align -Wunused -Woverloaded-virtual -Wnull-dereference
    -Wimplicit-fallthrough)
  if(DSV4_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# DSV4_SANITIZE=thread: ThreadSanitizer instead (the `tsan` preset; use with DSV4_OPENMP=OFF,
# since libgomp is not TSan-instrumented and its barriers read as races).
if(DSV4_SANITIZE STREQUAL "thread")
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
elseif(DSV4_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# Floating-point contraction off everywhere: GCC fuses a*b+c into an FMA by default even in
# ISO C++ mode, which rounds once where the reference rounds twice (seen in the RoPE kernel).
# Kernels that want FMA call it explicitly (intrinsics / xsimd::fma are not affected).
add_compile_options(-ffp-contract=off)
