# `hearth logits` against the float64 references: one golden model per
# tokenizer family, reference kernels, prompts.txt, 24 greedy tokens; then
# tests/golden/logits_check.c compares the output files. Plus usage errors.
add_executable(logits_check ${CMAKE_CURRENT_SOURCE_DIR}/golden/logits_check.c)
target_link_libraries(logits_check PRIVATE PkgConfig::JANSSON m)

foreach(name llama-spm.q4_k_m llama3-bpe.f32 qwen2-r1distill.q8_0 qwen2-chatml.f16)
  set(out ${CMAKE_CURRENT_BINARY_DIR}/logits_cli_${name})
  add_test(NAME cli.logits.${name}
           COMMAND sh -c "\"$0\" logits -m \"$1\" -f \"$2\" -o \"$3\" --greedy 24 -t 2 && \"$4\" \"$3\" \"$5\""
                   $<TARGET_FILE:hearth> ${HEARTH_SHARED_DIR}/golden/models/${name}.gguf
                   ${HEARTH_SHARED_DIR}/golden/prompts.txt ${out} $<TARGET_FILE:logits_check>
                   ${name})
  set_tests_properties(cli.logits.${name} PROPERTIES
                       ENVIRONMENT "${HEARTH_TEST_ENV};HEARTH_KERNELS=ref")
endforeach()

# Usage errors exit 2, runtime errors exit 1 with a message naming the problem.
add_test(NAME cli.logits.errors
         COMMAND sh -c "h=\"$0\"; m=\"$1\"; p=\"$2\"; o=\"$3\"
  \"$h\" logits -f \"$p\" -o \"$o\" 2>/dev/null; [ $? -eq 2 ] || { echo 'missing -m: expected exit 2'; exit 1; }
  \"$h\" logits -m \"$m\" -f \"$p\" -o \"$o\" --greedy x 2>/dev/null; [ $? -eq 2 ] || { echo 'bad --greedy: expected exit 2'; exit 1; }
  \"$h\" logits -m \"$m\" -f \"$p\" -o \"$o\" --bogus 1 2>/dev/null; [ $? -eq 2 ] || { echo 'unknown option: expected exit 2'; exit 1; }
  e=$(\"$h\" logits -m /nonexistent.gguf -f \"$p\" -o \"$o\" 2>&1); [ $? -eq 1 ] || { echo 'missing model: expected exit 1'; exit 1; }
  case \"$e\" in *nonexistent.gguf*) ;; *) echo \"missing model: message lacks the path: $e\"; exit 1;; esac
  e=$(\"$h\" logits -m \"$m\" -f /nonexistent.txt -o \"$o\" 2>&1); [ $? -eq 1 ] || { echo 'missing prompts: expected exit 1'; exit 1; }
  case \"$e\" in *nonexistent.txt*) ;; *) echo \"missing prompts: message lacks the path: $e\"; exit 1;; esac
  echo passed"
         $<TARGET_FILE:hearth> ${HEARTH_SHARED_DIR}/golden/models/llama-spm.q8_0.gguf
         ${HEARTH_SHARED_DIR}/golden/prompts.txt ${CMAKE_CURRENT_BINARY_DIR}/logits_cli_errors)
set_tests_properties(cli.logits.errors PROPERTIES ENVIRONMENT "${HEARTH_TEST_ENV}")
