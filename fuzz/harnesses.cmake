# The fuzz harnesses and the hearth libraries each one links. Shared by
# fuzz/CMakeLists.txt (libFuzzer builds) and tests/fuzz_replay.cmake (replay
# executables in the normal builds).
set(HEARTH_FUZZ_HARNESSES gguf model tokenizer template chat_json imatrix)
set(HEARTH_FUZZ_LIBS_gguf hearth_gguf)
set(HEARTH_FUZZ_LIBS_model hearth_model hearth_text)
set(HEARTH_FUZZ_LIBS_tokenizer hearth_text)
set(HEARTH_FUZZ_LIBS_template hearth_text)
set(HEARTH_FUZZ_LIBS_chat_json hearth_text)
set(HEARTH_FUZZ_LIBS_imatrix hearth_quant)
