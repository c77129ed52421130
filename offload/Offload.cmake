# The offload build: a configure-time guard against the silent host fallback, and the flags of an
# offload target.
#
# libomptarget below LLVM 21 cannot load device images in ELF ABI 8, which CUDA 13's ptxas writes; target regions then
# run on the host without a word. So build a one-line offload program with the chosen CUDA root, read
# the ABI version of the image it makes, and stop here if the runtime we link could not load it.
function(topk_check_device_toolchain)
  if(NOT CMAKE_C_COMPILER_ID STREQUAL "Clang")
    message(FATAL_ERROR "TOPK_GPU=ON needs LLVM clang (clang-19 on Debian 12); run ci/bootstrap, or -DTOPK_GPU=OFF")
  endif()
  string(REGEX MATCH "^[0-9]+" _llvm_major "${CMAKE_C_COMPILER_VERSION}")
  set(_libdir /usr/lib/llvm-${_llvm_major}/lib)
  if(NOT EXISTS ${_libdir}/libomptarget.so)
    message(FATAL_ERROR "no ${_libdir}/libomptarget.so: apt-get install libomp-${_llvm_major}-dev (ci/bootstrap does)")
  endif()
  if(NOT EXISTS ${TOPK_CUDA_ROOT}/bin/ptxas)
    message(FATAL_ERROR "TOPK_CUDA_ROOT=${TOPK_CUDA_ROOT} has no bin/ptxas: run ci/bootstrap, or -DTOPK_GPU=OFF")
  endif()
  set(_dir ${CMAKE_BINARY_DIR}/abi-check)
  file(MAKE_DIRECTORY ${_dir})
  file(WRITE ${_dir}/probe.c "int main(void){int x=0;\n#pragma omp target map(tofrom:x)\nx=1;\nreturn !x;}\n")
  string(REPLACE "," ";" _archs "${TOPK_GPU_ARCHS}")
  list(GET _archs 0 _arch)
  execute_process(
    COMMAND ${CMAKE_C_COMPILER} -fopenmp --offload-arch=${_arch} --cuda-path=${TOPK_CUDA_ROOT}
            --libomptarget-nvptx-bc-path=${_libdir} -save-temps=obj probe.c -o probe
    WORKING_DIRECTORY ${_dir} RESULT_VARIABLE _rc OUTPUT_VARIABLE _out ERROR_VARIABLE _out)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "cannot build an offload program with ${TOPK_CUDA_ROOT}:\n${_out}")
  endif()
  file(GLOB _images ${_dir}/*.img)
  if(NOT _images)
    message(FATAL_ERROR "the offload probe left no device image (*.img) in ${_dir}; cannot check the device image ABI")
  endif()
  list(GET _images 0 _image)
  execute_process(COMMAND readelf -h ${_image} OUTPUT_VARIABLE _elf)
  string(REGEX MATCH "ABI Version: +([0-9]+)" _ ${_elf})
  set(_abi ${CMAKE_MATCH_1})
  if(_abi GREATER 7 AND _llvm_major LESS 21)
    message(FATAL_ERROR "the device image has ELF ABI ${_abi}, which libomptarget ${_llvm_major} cannot load "
                        "(target regions would silently run on the host). Point TOPK_CUDA_ROOT at a CUDA 12 "
                        "root (ci/bootstrap makes one) or use LLVM 21+.")
  endif()
  message(STATUS "offload: device image ELF ABI ${_abi}, LLVM ${_llvm_major}, CUDA root ${TOPK_CUDA_ROOT}: loadable")
  set(TOPK_LLVM_LIBDIR ${_libdir} PARENT_SCOPE)
endfunction()

# Compiles and links TARGET as an OpenMP offload program for TOPK_GPU_ARCHS with the checked toolchain:
# the library itself, and the programs that call OpenMP's device-memory routines (LLVM 19's
# libomptarget crashes in a process whose executable registered no device image).
function(topk_offload_target target)
  string(REPLACE "," ";" _archs "${TOPK_GPU_ARCHS}")
  set(_flags -fopenmp --cuda-path=${TOPK_CUDA_ROOT} --libomptarget-nvptx-bc-path=${TOPK_LLVM_LIBDIR})
  foreach(_a IN LISTS _archs)
    list(APPEND _flags --offload-arch=${_a})
  endforeach()
  target_compile_options(${target} PRIVATE ${_flags})
  target_link_options(${target} PRIVATE ${_flags} -Wl,-rpath,${TOPK_LLVM_LIBDIR})
endfunction()

# The stream launcher's kernel table (offload/launcher.c, offload/kernel_table.cmake): the files whose
# regions it launches, compiled once more device-side only, to textual IR with the captured variables'
# names kept and no optimisation (a kernel's name and parameters do not depend on it: clang's front end
# makes them), then read into topk_kernels.h in the build tree.
function(topk_kernel_table target sources)
  string(REPLACE "," ";" _archs "${TOPK_GPU_ARCHS}")
  list(GET _archs 0 _arch)
  add_library(topk_kernel_ir OBJECT ${sources})
  target_include_directories(topk_kernel_ir PRIVATE $<TARGET_PROPERTY:${target},INCLUDE_DIRECTORIES>)
  target_compile_options(topk_kernel_ir PRIVATE -ffp-contract=off -fopenmp --cuda-path=${TOPK_CUDA_ROOT}
                         --offload-arch=${_arch} --offload-device-only -emit-llvm -S -fno-discard-value-names -O0)
  set(_dir ${CMAKE_BINARY_DIR}/generated)
  add_custom_command(OUTPUT ${_dir}/topk_kernels.h
    COMMAND ${CMAKE_COMMAND} -DOUTPUT=${_dir}/topk_kernels.h "-DINPUTS=$<TARGET_OBJECTS:topk_kernel_ir>"
            -P ${PROJECT_SOURCE_DIR}/offload/kernel_table.cmake
    DEPENDS topk_kernel_ir $<TARGET_OBJECTS:topk_kernel_ir> ${PROJECT_SOURCE_DIR}/offload/kernel_table.cmake
    VERBATIM)
  target_sources(${target} PRIVATE ${_dir}/topk_kernels.h)
  target_include_directories(${target} PRIVATE ${_dir})
endfunction()
