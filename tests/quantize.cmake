# hearth quantize and hearth perplexity (src/quant, tools/cmd_quantize.c,
# tools/cmd_perplexity.c): type mixes and bytes against the reference
# runtime's quantized golden files, KL divergence of our files against
# theirs, and the perplexity / KL tool against an independent computation.
add_executable(test_quantize ${CMAKE_CURRENT_SOURCE_DIR}/quant/test_quantize.c)
target_include_directories(test_quantize PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_quantize PRIVATE hearth_quant hearth_model PkgConfig::JANSSON
                      PkgConfig::CMOCKA m)
add_test(NAME quant.test_quantize COMMAND test_quantize)
set_tests_properties(quant.test_quantize PROPERTIES
                     ENVIRONMENT "${HEARTH_TEST_ENV};HEARTH_KERNELS=ref")

add_executable(test_perplexity ${CMAKE_CURRENT_SOURCE_DIR}/quant/test_perplexity.c)
target_include_directories(test_perplexity PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_perplexity PRIVATE hearth_model PkgConfig::CMOCKA m)
add_test(NAME quant.test_perplexity COMMAND test_perplexity)
set_tests_properties(quant.test_perplexity PROPERTIES
                     ENVIRONMENT "${HEARTH_TEST_ENV};HEARTH_KERNELS=ref")

add_test(NAME cli.quantize COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/quant/quantize_cli.sh)
set_tests_properties(cli.quantize PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}")

add_executable(test_imatrix ${CMAKE_CURRENT_SOURCE_DIR}/quant/test_imatrix.c)
target_include_directories(test_imatrix PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(test_imatrix PRIVATE hearth_quant hearth_model PkgConfig::CMOCKA m)
add_test(NAME quant.test_imatrix COMMAND test_imatrix)
set_tests_properties(quant.test_imatrix PROPERTIES
                     ENVIRONMENT "${HEARTH_TEST_ENV};HEARTH_KERNELS=ref")
