# CTest gpu_cuda_module_builds: builds libplinth_gpu_cuda.so (nvcc, every
# architecture in PLINTH_CUDA_ARCHITECTURES) and checks what plinth relies on:
# it exports plinth_gpu_module and no CUDA runtime symbol, and it needs no
# shared CUDA library (the runtime is linked in; the driver is found at run time).
#   cmake -DBUILD_DIR=<build> -DMODULE=<path of the .so> -P check_module.cmake
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BUILD_DIR} --target plinth_gpu_cuda
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the CUDA module does not build")
endif()
find_program(NM nm REQUIRED)
find_program(READELF readelf REQUIRED)
execute_process(COMMAND ${NM} -D --defined-only ${MODULE} OUTPUT_VARIABLE exported RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR NOT exported MATCHES " T plinth_gpu_module\n")
  message(FATAL_ERROR "${MODULE} does not export plinth_gpu_module:\n${exported}")
endif()
if(exported MATCHES "cuda[A-Z]")
  message(FATAL_ERROR "${MODULE} exports CUDA runtime symbols (--exclude-libs lost?):\n${exported}")
endif()
execute_process(COMMAND ${READELF} -d ${MODULE} OUTPUT_VARIABLE dynamic)
if(dynamic MATCHES "NEEDED[^\n]*(libcudart|libcuda\\.|libcublas)")
  message(FATAL_ERROR "${MODULE} links a CUDA library dynamically:\n${dynamic}")
endif()
message(STATUS "${MODULE}: builds, exports plinth_gpu_module only, links no CUDA library dynamically")
