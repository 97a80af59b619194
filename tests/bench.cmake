# hearth bench: unit tests of the bench module (tests/bench/test_*.c) and the
# CLI (bandwidth probe, JSON output on a golden model, a tiny written shape).
hearth_unit_tests(bench)
add_test(NAME bench.cli COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/bench/bench_cli.sh)
set_tests_properties(bench.cli PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}")
