# Golden tests of the dense models (llama, qwen2): one ctest per file,
# golden.<name>, running tests/golden/golden_model.c (see its header).
add_executable(golden_model ${CMAKE_CURRENT_SOURCE_DIR}/golden/golden_model.c)
target_link_libraries(golden_model PRIVATE hearth_model hearth_kernels hearth_avx512emu
                      PkgConfig::JANSSON)

foreach(family llama-spm llama3-bpe qwen2-r1distill qwen2-chatml)
  foreach(variant f32 f16 q8_0 q4_0 q4_k_m q6_k)
    add_test(NAME golden.${family}.${variant} COMMAND golden_model ${family}.${variant})
    set_tests_properties(golden.${family}.${variant} PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}"
                         LABELS golden TIMEOUT 600)
    hearth_golden_emu(${family}.${variant})
  endforeach()
endforeach()
