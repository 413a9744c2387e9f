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

# Unoptimised GCC builds (Debug): GCC 12's <avx512bwintrin.h> defines some AVX-512BW intrinsics
# that take no immediate (_mm512_mask_blend_epi8/epi16, ...) as macros when __OPTIMIZE__ is not
# defined, and those macros C-cast their operands straight to __v64qi / __v32hi, which xsimd's
# batch types do not convert to ("invalid cast ... to type '__v64qi'"). -O1 defines __OPTIMIZE__
# (so the header uses its inline functions); -Og would too, but then GCC 12 flags the
# `__m512i __Y = __Y;` idiom of its own _mm512_undefined_epi32() as -Wuninitialized. Added only
# for these TUs, only in Debug and only for GCC, after the config flags (-g stays), so Release
# keeps its -O3.
set(DSV4_ARCH_DEBUG_OPT $<$<AND:$<CONFIG:Debug>,$<CXX_COMPILER_ID:GNU>>:-O1>)

function(dsv4_arch_source file)  # dsv4_arch_source(<file> <flag>...)
  set_source_files_properties(${file} PROPERTIES
    COMPILE_OPTIONS "${ARGN};${DSV4_ARCH_DEBUG_OPT}"
    INTERPROCEDURAL_OPTIMIZATION OFF)
endfunction()

if(DSV4_NATIVE)
  message(WARNING "DSV4_NATIVE=ON: binaries will only run on CPUs like this one.")
  add_compile_options(-march=native)
endif()
