# `hearth pull` / `hearth list` against a hostile loopback HTTP server
# (tests/net/hostile_server.py, 127.0.0.1 and 127.0.0.2 only; no other network).
# Needs bash and python3 (both installed by scripts/setup.sh).
add_test(NAME net.pull_cli COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/net/pull_test.sh)
set_tests_properties(net.pull_cli PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}" TIMEOUT 240)
