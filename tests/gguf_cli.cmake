# `hearth inspect` on every golden model and on broken files (see the script).
add_test(NAME cli.inspect COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/gguf/inspect_cli.sh)
set_tests_properties(cli.inspect PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}")
