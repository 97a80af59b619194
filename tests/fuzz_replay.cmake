# Fuzz regressions in the normal builds (no libFuzzer needed): each harness
# body fuzz/fuzz_<name>.c is linked with fuzz/replay_main.c into
# replay_<name>, and the ctest fuzz.replay_<name> feeds it every file of
# fuzz/regressions/<name>/ (inputs that once crashed) and fuzz/corpus/<name>/
# (the seeds). Under the ASan build this replays them with the sanitizers on.
include(${CMAKE_SOURCE_DIR}/fuzz/harnesses.cmake)
foreach(h ${HEARTH_FUZZ_HARNESSES})
  add_executable(replay_${h} ${CMAKE_SOURCE_DIR}/fuzz/fuzz_${h}.c ${CMAKE_SOURCE_DIR}/fuzz/replay_main.c)
  target_compile_definitions(replay_${h} PRIVATE HEARTH_SHARED_DEFAULT="${HEARTH_SHARED_DIR}")
  target_link_libraries(replay_${h} PRIVATE ${HEARTH_FUZZ_LIBS_${h}})
  add_test(NAME fuzz.replay_${h}
           COMMAND replay_${h} ${CMAKE_SOURCE_DIR}/fuzz/regressions/${h}
                   ${CMAKE_SOURCE_DIR}/fuzz/corpus/${h})
  set_tests_properties(fuzz.replay_${h} PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}" TIMEOUT 300
                       PASS_REGULAR_EXPRESSION "replayed [1-9][0-9]* inputs \\(0 unreadable\\)")
endforeach()
