# The crafted hostile-GGUF suite: gen_crafted writes one file per known attack
# on GGUF loaders (truncations at every field, counts near 2^64, overflowing
# dims, bad offsets, unknown type ids, duplicates, NaN/Inf weights, shapes
# that do not fit the architecture, ...) and run_crafted runs `hearth inspect`
# and `hearth run` on each: exit 1 with a message naming the problem, never a
# signal, peak RSS under 64 MiB + the file's size (128 MiB under the
# sanitizers, whose shadow memory and quarantine are not hearth's).
add_executable(gen_crafted ${CMAKE_CURRENT_SOURCE_DIR}/crafted/gen_crafted.c)
target_include_directories(gen_crafted PRIVATE ${CMAKE_SOURCE_DIR}/src) # gguf.h limits
add_executable(run_crafted ${CMAKE_CURRENT_SOURCE_DIR}/crafted/run_crafted.c)
set(crafted_dir ${CMAKE_CURRENT_BINARY_DIR}/crafted)
add_test(NAME crafted.generate COMMAND gen_crafted ${crafted_dir})
set_tests_properties(crafted.generate PROPERTIES FIXTURES_SETUP crafted_files)
if(HEARTH_SANITIZE)
  set(crafted_rss_base 128)
else()
  set(crafted_rss_base 64)
endif()
add_test(NAME crafted.inspect_run COMMAND run_crafted $<TARGET_FILE:hearth> ${crafted_dir} ${crafted_rss_base})
set_tests_properties(crafted.inspect_run PROPERTIES FIXTURES_REQUIRED crafted_files
                     ENVIRONMENT "${HEARTH_TEST_ENV}" TIMEOUT 1200)
