# `hearth run` and `hearth chat` end to end (tests/cli/*.sh): greedy tokens of
# golden models against golden/f64, seeds, stop strings, the context limit,
# strict options, the demo model; chat through a pipe and under tmux.
add_test(NAME cli.run COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/run_test.sh)
set_tests_properties(cli.run PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}" TIMEOUT 600)
add_test(NAME cli.chat COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/chat_test.sh)
set_tests_properties(cli.chat PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}" TIMEOUT 600)
