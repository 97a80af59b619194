# `hearth template`: --template and -m paths, tools, extras, error exits.
add_test(NAME cli.template COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/text/template_cli.sh)
set_tests_properties(cli.template PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}")
