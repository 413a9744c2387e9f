# Driven by ctest (see CMakeLists.txt beside this file). Steps:
#  1. get an installed dsv4 into WORK_DIR/prefix (install this build, or build a shared one);
#  2. check the installed public headers pull in no third-party header;
#  3. configure, build and run the consumer project (C++17) against the prefix.
cmake_minimum_required(VERSION 3.25)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}\n${out}\n${err}")
  endif()
  set(RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

if(MODE STREQUAL "current")
  run(${CMAKE_COMMAND} --install "${BUILD_DIR}" --prefix "${prefix}")
elseif(MODE STREQUAL "shared")
  run(${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${WORK_DIR}/dsv4-build" -G "${GENERATOR}"
      -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON
      -DDSV4_BUILD_TESTS=OFF -DDSV4_BUILD_EXAMPLES=OFF -DDSV4_BUILD_BENCHMARKS=OFF)
  run(${CMAKE_COMMAND} --build "${WORK_DIR}/dsv4-build")
  run(${CMAKE_COMMAND} --install "${WORK_DIR}/dsv4-build" --prefix "${prefix}")
else()
  message(FATAL_ERROR "MODE must be current or shared")
endif()

foreach(f dsv4Config.cmake dsv4ConfigVersion.cmake dsv4Targets.cmake)
  file(GLOB_RECURSE found "${prefix}/*/${f}")
  if(NOT found)
    message(FATAL_ERROR "installed package lacks ${f}")
  endif()
endforeach()

# Public headers must not include third-party headers (consumers need only the standard library).
file(GLOB_RECURSE headers "${prefix}/include/dsv4/*.hpp")
foreach(h ${headers})
  file(STRINGS "${h}" includes REGEX "^[ \t]*#[ \t]*include")
  foreach(line ${includes})
    if(line MATCHES "simdjson|xsimd|Eigen|omp\\.h|cuda")
      message(FATAL_ERROR "public header ${h} includes a private dependency: ${line}")
    endif()
  endforeach()
endforeach()

if(MODE STREQUAL "shared")
  # Only the DSV4_API surface may be exported from the shared object.
  file(GLOB so_files "${prefix}/lib*/libdsv4.so")
  list(GET so_files 0 so)
  find_program(NM nm)
  if(NM)
    run(${NM} -D -C --defined-only "${so}")
    if(RUN_OUTPUT MATCHES "kernel_table|dsv4::kernels::|simdjson::")
      message(FATAL_ERROR "libdsv4.so exports internal symbols:\n${RUN_OUTPUT}")
    endif()
    if(NOT RUN_OUTPUT MATCHES "dsv4::system_info")
      message(FATAL_ERROR "libdsv4.so does not export dsv4::system_info")
    endif()
  endif()
endif()

set(cbuild "${WORK_DIR}/consumer-build")
run(${CMAKE_COMMAND} -S "${SOURCE_DIR}/tests/install/consumer" -B "${cbuild}" -G "${GENERATOR}"
    -DCMAKE_CXX_COMPILER=${CXX_COMPILER} -DCMAKE_BUILD_TYPE=Release
    -DCMAKE_PREFIX_PATH=${prefix} -DDSV4_SOURCE_DIR=${SOURCE_DIR})
run(${CMAKE_COMMAND} --build "${cbuild}")
run("${cbuild}/consumer")
message(STATUS "consumer output:\n${RUN_OUTPUT}")
if(NOT RUN_OUTPUT MATCHES "dsv4 [0-9]+\\.[0-9]+\\.[0-9]+")
  message(FATAL_ERROR "consumer did not print the dsv4 version")
endif()
# The installed minimal example links and runs (without a model it must print its usage and
# exit with status 2, not crash).
execute_process(COMMAND "${cbuild}/minimal" RESULT_VARIABLE rc OUTPUT_QUIET ERROR_VARIABLE err)
if(NOT rc EQUAL 2 OR NOT err MATCHES "usage: minimal")
  message(FATAL_ERROR "minimal: expected the usage message and exit status 2, got ${rc}: ${err}")
endif()
