# Per-architecture compile flags for the kernel translation units.
#
# Each src/kernels/simd/arch_<name>.cpp includes the same kernel template (ops-inl.hpp) inside
# its own namespace and is compiled with the flags below; everything else is compiled at the
# baseline ISA. The dispatcher (src/kernels/dispatch.cpp) picks one table at run time, so a
# release binary runs on any x86-64 and uses AVX-512 where the CPU and OS support it.
#
# IPO/LTO is switched off for these TUs and for the dispatcher: with LTO the linker may inline
# arch-specific code into baseline callers (the ggml -fno-lto lesson).
set(DSV4_X86 OFF)
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64|i[3-6]86)$")
  set(DSV4_X86 ON)
endif()

set(DSV4_FLAGS_AVX2   -mavx2 -mfma -mf16c -mbmi2)
set(DSV4_FLAGS_AVX512 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512cd
                      -mavx512bf16 -mavx512vnni -mavx512vbmi -mavx2 -mfma -mf16c -mbmi2)

function(dsv4_arch_source file)  # dsv4_arch_source(<file> <flag>...)
  set_source_files_properties(${file} PROPERTIES
    COMPILE_OPTIONS "${ARGN}"
    INTERPROCEDURAL_OPTIMIZATION OFF)
endfunction()

if(DSV4_NATIVE)
  message(WARNING "DSV4_NATIVE=ON: binaries will only run on CPUs like this one.")
  add_compile_options(-march=native)
endif()
