# `hearth tokenize` / `hearth detokenize`: round trips, golden ids, refusals.
add_test(NAME cli.tokenize COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/text/tokenize_cli.sh)
set_tests_properties(cli.tokenize PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}")
