# Golden tests of the deepseek2 models (MLA + MoE): one ctest per file,
# golden.<name>, running the golden_model program of golden.cmake. The exact
# tier (reference kernels vs golden/f64) gates every file; quantized files
# under the fast kernels are report-only (golden/README.md).
foreach(variant f32 q8_0 q4_0 q4_k_m q6_k)
  add_test(NAME golden.deepseek-v3.${variant} COMMAND golden_model deepseek-v3.${variant})
  set_tests_properties(golden.deepseek-v3.${variant} PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}"
                       LABELS golden TIMEOUT 600)
  hearth_golden_emu(deepseek-v3.${variant})
endforeach()
foreach(variant f32 q8_0 q4_0 q4_k_m)
  add_test(NAME golden.deepseek-v2-lite.${variant} COMMAND golden_model deepseek-v2-lite.${variant})
  set_tests_properties(golden.deepseek-v2-lite.${variant} PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}"
                       LABELS golden TIMEOUT 600)
  hearth_golden_emu(deepseek-v2-lite.${variant})
endforeach()
