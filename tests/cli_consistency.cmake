# The same conventions across every hearth command (tests/cli/consistency_test.sh):
# --help, usage errors (exit 2), runtime errors (exit 1, "hearth CMD: ..."),
# `-m demo` everywhere, inputs read whole or refused.
add_test(NAME cli.consistency COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/consistency_test.sh)
set_tests_properties(cli.consistency PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}" TIMEOUT 300)
